"""Request parsing: every malformed request is an InvalidInput (HTTP 400) naming what was wrong."""

from types import SimpleNamespace

import pytest

from lcrec.config import ServeConfig
from lcrec.serve.request import InvalidInput, Query, check_known, parse_v1, parse_v2

CFG = ServeConfig(max_k=20, default_k=10, max_exclude=5, max_instances=3, max_history_input=8)


def v2(name, data, datatype="BYTES"):
    return SimpleNamespace(name=name, data=data, datatype=datatype, shape=[len(data)])


def test_v1_parses_users_histories_k_and_exclusions():
    qs = parse_v1({"instances": [{"user_id": "u1"}, {"history": ["a", 7], "k": 3, "exclude": ["b"]}]}, CFG)
    assert qs == [Query("u1", None, 10, frozenset()), Query(None, ("a", "7"), 3, frozenset({"b"}))]


@pytest.mark.parametrize("payload, words", [
    ({}, "instances"),
    ({"instances": []}, "non-empty"),
    ({"instances": "u1"}, "non-empty list"),
    ({"instances": [{}]}, "user_id or a history"),
    ({"instances": [{"history": []}]}, "history is empty"),
    ({"instances": [{"history": "a,b"}]}, "must be a list"),
    ({"instances": [{"history": ["a", None]}]}, "history[1]"),
    ({"instances": [{"history": ["a"] * 9}]}, "at most 8"),
    ({"instances": [{"user_id": "u", "k": 0}]}, "1..20"),
    ({"instances": [{"user_id": "u", "k": 21}]}, "1..20"),
    ({"instances": [{"user_id": "u", "k": "5"}]}, "integer"),
    ({"instances": [{"user_id": "u", "k": True}]}, "integer"),
    ({"instances": [{"user_id": "u", "exclude": ["x"] * 6}]}, "at most 5"),
    ({"instances": [{"user_id": ["u"]}]}, "user_id"),
    ({"instances": [{"user_id": "u", "colour": 1}]}, "unknown field"),
    ({"instances": [{"user_id": "u"}] * 4}, "at most 3"),
    ({"instances": [5]}, "must be an object"),
    (b"raw bytes", "JSON object"),
    ([1, 2], "instances"),
])
def test_v1_rejects_malformed_requests_with_a_message(payload, words):
    with pytest.raises(InvalidInput) as err:
        parse_v1(payload, CFG)
    assert words in str(err.value)


def test_v2_rows_json_or_comma_lists_and_broadcast_k():
    qs = parse_v2([v2("user_id", ["u1", ""]), v2("history", ['["a", "b"]', "c, d"]), v2("k", [4], "INT32")], CFG)
    assert qs == [Query("u1", ("a", "b"), 4, frozenset()), Query(None, ("c", "d"), 4, frozenset())]


@pytest.mark.parametrize("inputs, words", [
    ([v2("k", [3], "INT32")], "user_id"),
    ([v2("user_id", ["u"]), v2("colour", ["x"])], "unknown input"),
    ([v2("user_id", ["u", "v"]), v2("history", ['["a"]'])], "expected 2"),
    ([v2("history", ["[not json"])], "not a valid JSON"),
    ([v2("history", ['{"a": 1}'])], "JSON array"),
    ([v2("user_id", ["u"] * 4)], "at most 3"),
    ([v2("user_id", [])], "no rows"),
    ([v2("user_id", ["u"]), v2("user_id", ["v"])], "twice"),
])
def test_v2_rejects_malformed_inputs(inputs, words):
    with pytest.raises(InvalidInput) as err:
        parse_v2(inputs, CFG)
    assert words in str(err.value)


def test_unknown_history_items_are_named():
    with pytest.raises(InvalidInput) as err:
        check_known(Query(None, ("a", "zz"), 3, frozenset()), {"a"}, "instances[0]")
    assert "zz" in str(err.value) and "instances[0]" in str(err.value)
    check_known(Query(None, ("a",), 3, frozenset()), {"a"}, "x")
