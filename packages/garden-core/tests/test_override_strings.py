"""Model Garden's override-string grammar, including a fuzz test with hypothesis."""

import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garden_core.config import ConfigError, parse_override_string


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a.b=1", {"a": {"b": 1}}),
        ("a.b=1,a.c=2", {"a": {"b": 1, "c": 2}}),
        ("c.d=[1,2]", {"c": {"d": [1, 2]}}),
        ("e='text'", {"e": "text"}),
        ('e="with, comma"', {"e": "with, comma"}),
        ("e='it\\'s'", {"e": "it's"}),
        ("f=1e-4", {"f": 1e-4}),
        ("f=-2.5E3", {"f": -2500.0}),
        ("f=.5", {"f": 0.5}),
        ("g=true,h=false", {"g": True, "h": False}),
        ("h=null,i=None", {"h": None, "i": None}),
        ("type=adamw", {"type": "adamw"}),
        ("l=[],m=['x,y', 3, true]", {"l": [], "m": ["x,y", 3, True]}),
        (" a = 1 , b = 'x' ", {"a": 1, "b": "x"}),
        ("", {}),
        ("path=gs://bucket/dir/file-*.tfrecord", {"path": "gs://bucket/dir/file-*.tfrecord"}),
    ],
)
def test_grammar(text, expected):
    assert parse_override_string(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "expected `key=value`"),
        ("a=1,,b=2", "empty item"),
        ("a=1,", "empty item"),
        ("a=", "missing value"),
        ("a=[1,[2]]", "nested lists"),
        ("a=[1,2", "unterminated `[`"),
        ("a=1]", "unmatched `]`"),
        ("a='x", "unterminated"),
        ("1a=2", "not a dotted key"),
        ("a..b=2", "not a dotted key"),
        ("a=1,a=2", "set twice"),
        ("a=b=c", "expected `key=value`"),
        ("a=__import__('os')", "cannot read value"),
        ("a=1,a.b=2", "set to a value and also used as the parent"),
        ("a.b=2,a=1", "set to a value and also used as a parent"),
    ],
)
def test_errors_name_the_item(text, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_override_string(text)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_no_input_crashes_the_parser_with_another_error(text):
    try:
        result = parse_override_string(text)
    except ConfigError:
        return
    assert isinstance(result, dict)


_ATOMS = st.sampled_from(list("abc.=,[]'\"\\ 1e-+_") + ["true", "null", "1e-4", "'x,y'"])


@settings(max_examples=2000, deadline=None)
@given(st.lists(_ATOMS, max_size=25).map("".join))
def test_grammar_shaped_inputs_never_crash_the_parser(text):
    with contextlib.suppress(ConfigError):
        parse_override_string(text)


_KEYS = st.from_regex(r"[a-z_][a-z0-9_]{0,6}(\.[a-z_][a-z0-9_]{0,6}){0,2}", fullmatch=True)
_VALUES = st.one_of(
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.none(),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
)


def _render(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=4))
def test_rendered_overrides_parse_back_to_their_values(flat):
    # Keys where one is a prefix of another cannot both be set; keep the rest.
    keys = [k for k in flat if not any(o != k and o.startswith(k + ".") for o in flat)]
    text = ",".join(f"{k}={_render(flat[k])}" for k in keys)
    parsed = parse_override_string(text)
    for key in keys:
        node = parsed
        for part in key.split("."):
            node = node[part]
        assert node == flat[key]
