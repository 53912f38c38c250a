"""``openai.scan_bytes`` (compiled decoding into the plain row schema) agrees with the dict path.

When it returns turns, the row must be valid JSON for orjson, and ``scan`` on the decoded row
and the full conversion must give the same turns; None is always allowed (the reader then
takes the dict path, which decides). The edge cases are where two JSON parsers could
disagree: invalid UTF-8, surrogates, numbers out of range, duplicate keys, trailing data.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from deploysim.sources.config import SourceConfig
from deploysim.sources.formats import openai
from deploysim.sources.reader import SourceReader
from tests.test_sources_core_scan import ROW, load_benchmark_generator, slow_turns

TOOL = {"type": "function", "function": {"name": "f", "description": "d",
                                         "parameters": {"type": "object", "properties": {}}}}


def agree(raw: bytes) -> list[list[int]] | None:
    """scan_bytes(raw), after checking it against the dict path."""
    fast = openai.scan_bytes(raw)
    if fast is not None:
        row = orjson.loads(raw)  # raises if scan_bytes vouched for bytes orjson rejects
        assert openai.scan(row) == fast == slow_turns(row)
    return fast


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROW)
def test_scan_bytes_agrees_with_scan_and_convert(row: dict[str, Any]) -> None:
    agree(json.dumps(row).encode())  # the stdlib encoder: the rows hold integers beyond 64 bits


def test_scan_bytes_vouches_for_realistic_rows() -> None:
    generator = load_benchmark_generator()
    rng = random.Random(7)
    for i in range(300):
        assert agree(orjson.dumps(generator.generate_row(rng, i))) is not None


PLAIN = b'{"messages":[{"role":"user","content":"%s"},{"role":"assistant","content":"ok"}]}'


@pytest.mark.parametrize("raw", [
    PLAIN % b"caf\xc3\xa9",  # UTF-8
    PLAIN % b"\\ud83d\\ude00",  # an escaped surrogate pair
    PLAIN % b"tab\\t and \\u0000",
    b' {"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]} ',
    b'{"messages":[{"role":"user","content":"a","content":"b"},{"role":"assistant","content":"c"}]}',
    # a number beyond 64 bits: orjson reads it as a float, msgspec as an int; both accept it
    orjson.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                  "tools": [TOOL]}).replace(b'"properties":{}', b'"properties":{},"max":1' + b"0" * 30),
])
def test_rows_both_parsers_accept(raw: bytes) -> None:
    assert agree(raw) == [[0]]


@pytest.mark.parametrize("raw", [
    PLAIN % b"caf\xe9",  # Latin-1, not UTF-8
    PLAIN % b"\xed\xa0\x80",  # an encoded surrogate
    PLAIN % b"\\ud800",  # a lone escaped surrogate
    PLAIN % b"\\udc00x",
    PLAIN % b"a\x01",  # a raw control character
    (PLAIN % b"a") + b" trailing",
    b"\xef\xbb\xbf" + (PLAIN % b"a"),  # a byte-order mark inside the file
    b'{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b",}]}',
    b'{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":NaN}]}',
    orjson.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
                  "tools": [TOOL]})[:-1] + b',"x":1e400}',
    # shapes the dict path handles itself: legacy function results, content parts, unknown keys
    b'{"messages":[{"role":"user","content":"a"},{"role":"function","content":"b"}]}',
    b'{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":"b"}]}',
    b'{"messages":[{"role":"user","content":"a","weird":1},{"role":"assistant","content":"b"}]}',
    b'{"messages":[{"role":"user","content":""},{"role":"assistant","content":""}]}',
    b'{"messages":[],"created":1767225600}',
])
def test_rows_left_to_the_dict_path(raw: bytes) -> None:
    assert agree(raw) is None


def test_reader_counts_do_not_depend_on_the_fast_paths(tmp_path: Path) -> None:
    rows = [PLAIN % f"q{i}".encode() for i in range(5)]
    rows += [PLAIN % b"caf\xe9", PLAIN % b"\\ud800", b'{"messages": 3}', b"not json",
             b'{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]},'
             b'{"role":"assistant","content":"b"}]}']
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(rows) + b"\n")
    seen = []
    for need_conversations in (False, True):  # fast paths (scan_bytes, scan), then the full conversion
        reader = SourceReader(SourceConfig(path=path), need_conversations=need_conversations)
        turns = [(line, t) for line, _, _, t in reader]
        st = reader.stats
        seen.append((turns, st.read, st.accepted, st.quarantined, st.eligible_turns))
    assert seen[0] == seen[1]
    assert seen[0][1:] == (10, 6, 4, 6)
