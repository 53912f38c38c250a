"""Fast paths agree with the slow, obvious ones on generated rows.

* ``openai.scan`` (validate + eligible turns without building dicts) must return exactly the
  eligible turns that ``check_conversation(openai.convert(row))`` gives, or None.
* ``check_conversation`` must never accept a dict that the pydantic records reject.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deploysim.records import Conversation
from deploysim.sources.formats import openai
from deploysim.sources.formats.base import RowError
from deploysim.sources.validate import check_conversation

# value lists repeat the valid values so that a good share of the rows are usable
ROLES = st.sampled_from(["user"] * 6 + ["assistant"] * 6
                        + ["system", "tool", "developer", "function", "robot", None, 3])
TEXT = st.sampled_from(["", "hello", "a longer answer"])
CONTENT = st.one_of(TEXT, TEXT, TEXT, st.none(), st.integers(), st.just([{"type": "text", "text": "part"}]),
                    st.just([{"type": "image_url", "image_url": {}}]), st.just({"text": "t"}))
FUNCTION = st.fixed_dictionaries({"name": st.sampled_from(["f", "f", "f", "", 3])},
                                 optional={"arguments": st.sampled_from(["{}", "{}", {"a": 1}, 7])})
CALL = st.fixed_dictionaries(
    {"function": st.one_of(FUNCTION, FUNCTION, st.just("not a dict"))},
    optional={"id": st.sampled_from(["call_1", "call_1", "", 5, None]), "type": st.just("function")})
PLAIN_MESSAGE = st.fixed_dictionaries({"role": ROLES, "content": TEXT})
MESSAGE = st.one_of(
    PLAIN_MESSAGE, PLAIN_MESSAGE, PLAIN_MESSAGE,
    st.fixed_dictionaries({"role": ROLES}, optional={
        "content": CONTENT, "tool_calls": st.one_of(st.lists(CALL, max_size=2), st.none(), st.just("x")),
        "tool_call_id": st.sampled_from(["call_1", "call_1", 4, None]),
        "name": st.sampled_from(["n", "n", 2])}),
    st.fixed_dictionaries({"role": ROLES, "content": CONTENT},
                          optional={"refusal": st.sampled_from(["no", None]), "weird": st.just(1)}),
    st.just("not a message"),
)
META_VALUE = st.sampled_from(["en", "general_chat", "en", "general_chat", "", None, 3, ["x"]])
TOOL_FUNCTION = st.fixed_dictionaries(
    {"name": st.sampled_from(["run", "run", "", 1])},
    optional={"description": st.sampled_from(["d", "d", 3, None]),
              "parameters": st.sampled_from([{}, {"type": "object"}, "p", None])})
TOOL = st.one_of(
    st.fixed_dictionaries({"type": st.just("function"), "function": TOOL_FUNCTION}),
    st.fixed_dictionaries({"type": st.just("function"), "function": TOOL_FUNCTION}),
    st.fixed_dictionaries({"name": st.sampled_from(["flat", "flat", 2])}),
    st.just(3),
)
ROW = st.fixed_dictionaries(
    {"messages": st.one_of(st.lists(MESSAGE, max_size=6), st.lists(PLAIN_MESSAGE, max_size=6),
                           st.just("nope"))},
    optional={
        "id": st.sampled_from(["c1", 7, None, ""]), "model": st.sampled_from(["m", "m", 3, None, ""]),
        "metadata": st.one_of(st.none(), st.dictionaries(st.sampled_from(
            ["product_context", "language", "timestamp", "deployed_model", "model", "deidentified", "team"]),
            META_VALUE, max_size=4), st.just("meta")),
        "tools": st.one_of(st.lists(TOOL, max_size=2), st.lists(TOOL, max_size=2), st.just({"x": 1})),
        "functions": st.lists(TOOL, max_size=1),
        "created": st.sampled_from([1767225600, 10**20, "yesterday"]),
        "language": META_VALUE, "deidentified": st.sampled_from(["raw", "raw", "bogus", None]),
        "timestamp": META_VALUE, "extra_field": st.sampled_from([1, "x", [1]]),
    },
)


def slow_turns(row: dict[str, Any]) -> list[list[int]] | None:
    try:
        return [check_conversation(c) for c in openai.convert(row, source="s", index=1)]
    except RowError:
        return None


#: an unhashable ``deidentified`` once raised TypeError instead of being rejected with a reason
UNHASHABLE_DEID = {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}],
                   "metadata": {"product_context": "en", "deidentified": ["x"]}}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROW)
@example(UNHASHABLE_DEID)
def test_scan_agrees_with_convert_and_check(row: dict[str, Any]) -> None:
    fast = openai.scan(row)
    if fast is not None:
        assert slow_turns(row) == fast


def load_benchmark_generator() -> Any:
    """The benchmark's row generator: plain rows with system prompts, tools and tool calls."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ingest_sample.py"
    spec = importlib.util.spec_from_file_location("ingest_sample", path)
    assert spec is not None and spec.loader is not None
    ingest_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ingest_sample)
    return ingest_sample


def test_scan_vouches_for_realistic_rows() -> None:
    ingest_sample = load_benchmark_generator()
    rng = random.Random(5)
    rows = [ingest_sample.generate_row(rng, i) for i in range(300)]
    assert any(any(m.get("tool_calls") for m in r["messages"]) for r in rows)  # type: ignore[union-attr]
    for row in rows:
        fast = openai.scan(row)
        assert fast is not None and fast == slow_turns(row)


@settings(max_examples=400, deadline=None)
@given(ROW)
@example(UNHASHABLE_DEID)
def test_accepted_dicts_are_valid_records(row: dict[str, Any]) -> None:
    try:
        convs = openai.convert(row, source="s", index=1)
    except RowError:
        return
    for conv in convs:
        try:
            check_conversation(conv)
        except RowError:
            continue
        Conversation.model_validate(conv)
