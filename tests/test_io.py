"""``mrbench.io``'s JSON parsing: the same values as the standard library, exact error locations."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrbench.errors import ValidationError
from mrbench.io import json_lines, json_loads

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_same_values_as_the_standard_library(value: object) -> None:
    """Round trip through ``json.dumps``: floats (shortest repr), huge ints and infinities alike."""
    text = json.dumps(value)
    assert repr(json_loads(text)) == repr(json.loads(text))


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_correctly_rounded(number: float) -> None:
    for text in (repr(number), f"{number:.17g}", f"{number:.6e}"):
        assert json_loads(text) == json.loads(text)


def test_standard_library_extensions_still_parse() -> None:
    """NaN and Infinity literals (which orjson refuses) reach validation, which names the field."""
    value = json_loads('{"pred_relevant_windows": [[NaN, Infinity, 1]]}')
    start, end, _ = value["pred_relevant_windows"][0]
    assert math.isnan(start) and end == math.inf
    assert json_loads('{"a": 1, "a": 2}') == {"a": 2}  # the last duplicate key wins in both
    for number in (2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30):  # beyond 64 bits: still an int
        assert json_loads(f'{{"qid": {number}}}') == {"qid": number}
        assert type(json_loads(str(number))) is int


def test_json_lines_names_file_line_and_column() -> None:
    text = '{"qid": 1}\n\n{"qid": 2}\r\n{"qid": 3,}\n'
    with pytest.raises(ValidationError) as error:
        list(json_lines(text, "preds.jsonl"))
    message = str(error.value)
    assert "preds.jsonl" in message and "4" in message and "column 11" in message
    assert list(json_lines(text.replace(",}", "}"), "x")) == [(1, {"qid": 1}), (3, {"qid": 2}), (4, {"qid": 3})]


def test_json_lines_split_only_at_line_breaks() -> None:
    """A string may hold U+2028, U+2029 or U+0085 (valid JSON): they do not end the line."""
    text = '{"query": "a\u2028b\x85c\u2029d"}\r{"qid": 2}\r\n\n{"qid": 3}'
    assert list(json_lines(text, "x")) == [(1, {"query": "a\u2028b\x85c\u2029d"}), (2, {"qid": 2}), (4, {"qid": 3})]
