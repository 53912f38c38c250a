"""What graders read: the rendered transcript and the structured turn view."""

from __future__ import annotations

from deploysim.grade.base import GradeItem
from deploysim.grade.transcript import TurnView, render_transcript, response_messages
from deploysim.records import Completion, Continuation, Message
from tests.grade_fixtures import call, completion, output, prefix


def test_render_marks_the_graded_turn_with_tool_calls_and_provenance() -> None:
    p = prefix("Book me a flight", earlier=[Message(role="user", content="hello"),
                                            Message(role="assistant", content="hi, how can I help?")],
               tools=["book_flight"], context="customer_support")
    c = completion(p, "Booked!", steps=[call("book_flight", '{"to": "OSL"}'),
                                        output('{"error": "full"}', provenance="replayed")])
    text = render_transcript(GradeItem(prefix=p, completion=c), nonce="abc")
    before, graded = text.split("<<abc:GRADED RESPONSE")
    assert "<<abc:PRODUCT CONTEXT>>\ncustomer_support" in before
    assert "book_flight: the book_flight tool" in before
    assert before.index("hello") < before.index("hi, how can I help?") < before.index("Book me a flight")
    assert '<<abc:TOOL CALL book_flight id=call_1>>\n{"to": "OSL"}' in graded
    assert "<<abc:TOOL OUTPUT id=call_1 source=replayed>>" in graded and '{"error": "full"}' in graded
    assert graded.index("replayed") < graded.index("Booked!")
    assert text.endswith("<<abc:END OF GRADED RESPONSE>>")


def test_render_shows_the_request_sent_and_the_reasoning() -> None:
    from deploysim.records import RequestSettings, ToolSpec

    p = prefix("What is 6 times 7?", earlier=[Message(role="system", content="log's original prompt")])
    c = completion(p, "42").model_copy(update={"message": Message(role="assistant", content="42",
                                                                  reasoning="six sevens are 42")})
    c = c.model_copy(update={"transcript": (c.message,)})
    sent = RequestSettings(id="s", provider="openai", model="x", system_prompt="Arm's own prompt",
                           tools=(ToolSpec(name="calculator"),))
    text = render_transcript(GradeItem(prefix=p, completion=c, settings=sent), nonce="n")
    assert "Arm's own prompt" in text and "log's original prompt" not in text and "calculator" in text
    assert "<<n:REASONING not shown to the user>>\nsix sevens are 42" in text
    logged = render_transcript(GradeItem(prefix=p, completion=c), nonce="n")
    assert "log's original prompt" in logged  # without a record, the log's request is shown


def test_long_transcripts_are_cut_deterministically_keeping_request_and_response() -> None:
    earlier = [Message(role="user" if i % 2 == 0 else "assistant", content=f"turn {i} " + "x" * 1000)
               for i in range(20)]
    p = prefix("FINAL QUESTION " + "q" * 1000, earlier=earlier)
    c = completion(p, "ANSWER START " + "a" * 30_000 + " ANSWER END")
    it = GradeItem(prefix=p, completion=c)
    text = render_transcript(it, max_chars=12_000)
    assert len(text) < 13_000
    assert text == render_transcript(it, max_chars=12_000)
    assert "earlier messages>>" in text and "<<OMITTED" in text and "characters omitted" in text
    assert render_transcript(it, max_chars=12_000).count("FINAL QUESTION") == 1
    assert "FINAL QUESTION" in text and "ANSWER START" in text and "ANSWER END" in text
    assert "turn 0 " not in text and "turn 19 " in text  # the most recent context survives


def test_production_completion_is_not_duplicated() -> None:
    """A y_prod completion's message is the first assistant message of its transcript."""
    p = prefix("Where is my order?", tools=["lookup_order"])
    first = call("lookup_order", '{"id": 7}')
    steps = (output('{"status": "shipped"}'), Message(role="assistant", content="It shipped."))
    c = Completion(id="prod", prefix_id=p.id, arm="y_prod", model="y", generator_hash="h", message=first,
                   transcript=(first, *steps))
    assert response_messages(c) == (first, *steps)
    view = TurnView.of(GradeItem(prefix=p, completion=c))
    assert view.response == "It shipped."
    assert [u.call.name for u in view.tool_uses] == ["lookup_order"]
    assert view.tool_uses[0].output_text == '{"status": "shipped"}'
    assert view.request == "Where is my order?" and view.tools_available == ("lookup_order",)
    assert Continuation(response=first, steps=steps).response == first
