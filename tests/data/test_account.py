"""Nothing lost on the way in: each defect class real dumps have is counted, kept in rejected.parquet, and gated.

Each test writes Amazon-2018-format files with one kind of defect, ingests them and checks the account's numbers;
the gate tests run the validate step over the result."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lcrec.config import DataConfig, ValidateConfig
from lcrec.data.account import IngestError
from lcrec.data.ingest import ingest
from lcrec.data.schema import read_tables


def _review(user, item, rating=5.0, t=1500000000):
    return {"reviewerID": user, "asin": item, "overall": rating, "unixReviewTime": t, "reviewText": "fine"}


def _write(folder, reviews, meta, name="Cat"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in reviews))
    (folder / f"meta_{name}.json").write_text("".join(json.dumps(m) + "\n" for m in meta))
    return folder


def _meta(n):
    return [{"asin": f"A{i}", "title": f"Item number {i}", "description": ["d"]} for i in range(n)]


def _ingest(folder, tmp_path, name="Cat"):
    out = tmp_path / "data"
    stats = ingest(DataConfig(source="amazon2018", path=str(folder), name=name), out)
    report = json.loads((out / "ingest_report.json").read_text())
    rejected = pd.read_parquet(out / "rejected.parquet")
    return stats, report, rejected, out


def _file(report, name):
    from pathlib import Path

    return next(f for f in report["files"] if Path(f["file"]).name == name)


def _balanced(report):
    for f in report["files"]:
        assert f["read"] == f["kept"] + f["dropped"], f
        assert f["dropped"] == sum(f["dropped_by_reason"].values())


def test_reviews_of_items_missing_from_the_metadata_are_counted_and_stop_the_gate(tmp_path):
    from lcrec.validation.validate import DataValidationError, validate_tables

    reviews = [_review(f"U{u}", f"A{k if k < 5 else 20 + k}") for u in range(20) for k in range(10)]  # half unknown
    folder = _write(tmp_path / "src", reviews, _meta(20))
    stats, report, rejected, out = _ingest(folder, tmp_path)
    f = _file(report, "Cat.json")
    assert f["read"] == 200 and f["dropped_by_reason"] == {"unknown_item": 100} and f["kept"] == 100
    _balanced(report)
    assert stats["interactions"] == 100 and stats["interactions_dropped.unknown_item"] == 100
    assert set(rejected["reason"]) == {"unknown_item"} and len(rejected) == 100
    assert rejected["line"].min() >= 1 and rejected["source_file"].str.endswith("Cat.json").all()
    with pytest.raises(DataValidationError) as err:
        validate_tables(ValidateConfig(min_timestamp=0), out, tmp_path / "validation")
    message = str(err.value)
    assert "100 of 200 rows (50.0%) dropped as unknown_item" in message and "Cat.json" in message
    assert "e.g. line" in message and "max_dropped_share" in message
    assert (tmp_path / "validation" / "data_docs" / "index.html").exists()


def test_a_share_under_the_threshold_passes_and_says_what_was_dropped(tmp_path):
    from lcrec.validation.validate import validate_tables

    reviews = [_review(f"U{u}", f"A{k}") for u in range(30) for k in range(10)] + [_review("U0", "A99")]
    stats, report, _, out = _ingest(_write(tmp_path / "src", reviews, _meta(10)), tmp_path)
    assert _file(report, "Cat.json")["dropped_by_reason"] == {"unknown_item": 1}
    result = validate_tables(ValidateConfig(min_timestamp=0), out, tmp_path / "validation")
    assert result["success"] and result["ingest_dropped"] == ["Cat.json: dropped 1 of 301 rows (1 unknown_item)"]
    loose = validate_tables(ValidateConfig(min_timestamp=0, max_dropped_share=0.0,
                                           max_dropped_share_by_reason={"unknown_item": 0.01}), out,
                            tmp_path / "validation2")
    assert loose["success"]  # a per-reason override


@pytest.mark.parametrize("bad,field", [({"reviewerID": None, "asin": "A1"}, "reviewerID"),
                                       ({"reviewerID": "U9", "asin": ""}, "asin"),
                                       ({"asin": "A1"}, "reviewerID")])
def test_missing_or_empty_ids_are_dropped_as_missing_id(tmp_path, bad, field):
    reviews = [_review("U1", "A1"), {**_review("x", "y"), **bad}]
    if "reviewerID" not in bad:
        del reviews[1]["reviewerID"]
    _, report, rejected, _ = _ingest(_write(tmp_path / "src", reviews, _meta(2)), tmp_path)
    assert _file(report, "Cat.json")["dropped_by_reason"] == {"missing_id": 1}
    row = rejected.iloc[0]
    assert row["line"] == 2 and row["field"] == field and row["table"] == "interactions"


def test_duplicate_metadata_and_items_without_text(tmp_path):
    meta = _meta(3) + [{"asin": "A1", "title": "Another title"}, {"asin": "A7", "title": "", "description": []},
                       {"title": "No asin"}]
    _, report, rejected, out = _ingest(_write(tmp_path / "src", [_review("U1", "A0")], meta), tmp_path)
    f = _file(report, "meta_Cat.json")
    assert f["read"] == 6 and f["kept"] == 3
    assert f["dropped_by_reason"] == {"duplicate_metadata": 1, "empty_text": 1, "missing_id": 1}
    _, items, _ = read_tables(out)
    assert items.set_index("item_id").loc["A1", "title"] == "Item number 1"  # the first record wins
    assert set(rejected[rejected["table"] == "items"]["line"]) == {4, 5, 6}


def test_duplicate_events_keep_the_first(tmp_path):
    reviews = [_review("U1", "A0", 5.0, 1), _review("U1", "A0", 1.0, 2), _review("U1", "A1", 3.0, 3)]
    _, report, rejected, out = _ingest(_write(tmp_path / "src", reviews, _meta(2)), tmp_path)
    assert _file(report, "Cat.json")["dropped_by_reason"] == {"duplicate_event": 1}
    inter, _, _ = read_tables(out)
    assert list(inter["rating"]) == [5.0, 3.0] and rejected.iloc[0]["line"] == 2


def test_an_unparsable_value_names_file_line_field_and_value(tmp_path):
    reviews = [_review("U1", "A0"), _review("U1", "A1", rating="five"), _review("U2", "A0", t="yesterday")]
    _, report, rejected, _ = _ingest(_write(tmp_path / "src", reviews, _meta(2)), tmp_path)
    assert _file(report, "Cat.json")["dropped_by_reason"] == {"unparsable_value": 2}
    rows = rejected.sort_values("line").to_dict("records")
    assert [(r["line"], r["field"], r["raw"]) for r in rows] == [(2, "overall", "five"), (3, "unixReviewTime", "yesterday")]
    example = _file(report, "Cat.json")["examples"]["unparsable_value"][0]
    assert example["source_file"].endswith("Cat.json") and example["line"] == 2


def test_bundled_movielens_reads_with_nothing_dropped(tmp_path):
    stats = ingest(DataConfig(source="ml-100k"), tmp_path / "data")
    report = json.loads((tmp_path / "data" / "ingest_report.json").read_text())
    assert report["tables"]["interactions"] == {"read": 100000, "kept": 100000, "dropped": 0,
                                                 "dropped_by_reason": {}, "dropped_share": 0.0}
    assert stats["interactions"] == 100000
    filtered = ingest(DataConfig(source="ml-100k", min_rating=5), tmp_path / "data5")
    assert filtered["interactions_dropped.below_min_rating"] == 100000 - filtered["interactions"]


def test_a_file_that_is_not_there_or_not_readable_is_an_ingest_error(tmp_path):
    with pytest.raises(IngestError, match="none of Cat.json"):
        ingest(DataConfig(source="amazon2018", path=str(tmp_path), name="Cat"), tmp_path / "data")
    (tmp_path / "Cat.json.gz").write_bytes(b"not gzip at all")
    (tmp_path / "meta_Cat.json").write_text("")
    with pytest.raises(IngestError, match="cannot be read"):
        ingest(DataConfig(source="amazon2018", path=str(tmp_path), name="Cat"), tmp_path / "data")


# ------------------------------------------------------------------------------------------------ property test
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_value = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**10), st.floats(allow_nan=True),
                   st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2),
                                                                                           st.integers(), max_size=1))
_id = st.one_of(st.sampled_from(["U1", "U2", "U3", "A0", "A1", "A2", "A3", ""]), _value)
_review_row = st.one_of(
    st.fixed_dictionaries({"reviewerID": _id, "asin": _id, "overall": st.one_of(st.floats(0, 5), _value),
                           "unixReviewTime": st.one_of(st.integers(10**9, 1.6 * 10**9), _value)}),
    st.text(max_size=20),  # a line that is not a record
)
_meta_row = st.fixed_dictionaries({"asin": _id, "title": st.one_of(st.text(max_size=12), _value),
                                   "description": st.one_of(st.lists(st.text(max_size=10), max_size=2), _value)})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reviews=st.lists(_review_row, max_size=25), meta=st.lists(_meta_row, max_size=10))
def test_ingest_accounts_for_every_row_or_stops_with_an_ingest_error(tmp_path_factory, reviews, meta):
    tmp = tmp_path_factory.mktemp("prop")
    folder = tmp / "src"
    folder.mkdir()
    (folder / "Cat.json").write_text("".join((r.replace("\n", " ").replace("\r", " ") if isinstance(r, str) else json.dumps(r)) + "\n"
                                             for r in reviews))
    (folder / "meta_Cat.json").write_text("".join(json.dumps(m) + "\n" for m in meta))
    try:
        stats = ingest(DataConfig(source="amazon2018", path=str(folder), name="Cat"), tmp / "data")
    except IngestError:
        return  # a clear, file-level error is an accepted outcome; any other exception fails the test
    report = json.loads((tmp / "data" / "ingest_report.json").read_text())
    _balanced(report)
    inter, items, _ = read_tables(tmp / "data")
    rejected = pd.read_parquet(tmp / "data" / "rejected.parquet")
    reviews_file = _file(report, "Cat.json")
    lines = [r.replace("\n", " ").replace("\r", " ").strip() if isinstance(r, str) else "x" for r in reviews]
    assert reviews_file["read"] == sum(1 for line in lines if line)
    assert reviews_file["kept"] == len(inter) == stats["interactions"]
    assert _file(report, "meta_Cat.json")["kept"] == len(items)
    assert len(rejected) == sum(f["dropped"] for f in report["files"])
    assert set(inter["item_id"]) <= set(items["item_id"]) and not inter.duplicated(["user_id", "item_id"]).any()


@pytest.mark.parametrize("point", ["after_tmp", "after_move_aside", "after_move_in"])
def test_kill_9_during_ingest_keeps_the_previous_tables_and_a_rerun_succeeds(tmp_path, point):
    import os
    import signal
    import subprocess
    import sys

    from lcrec.data.ingest import CRASH_ENV

    folder = _write(tmp_path / "src", [_review("U1", "A0"), _review("U2", "A1")], _meta(2))
    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  work_dir: {tmp_path / 'work'}\ndata:\n  source: amazon2018\n  path: {folder}\n"
                      "  name: Cat\ntracking:\n  enabled: false\n")
    cmd = [sys.executable, "-m", "lcrec.cli", "ingest", "--params", str(params)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    data = tmp_path / "work" / "data"
    before = read_tables(data)[0]
    _write(folder, [_review("U1", "A0"), _review("U2", "A1"), _review("U3", "A1")], _meta(2))  # new data arrives
    killed = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, CRASH_ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    after_kill = read_tables(data)[0]  # readable whatever the moment of the kill: the old tables or the new ones
    assert len(after_kill) in (len(before), 3)
    if point != "after_move_in":
        assert after_kill.equals(before)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(read_tables(data)[0]) == 3
    assert not data.with_name("data.old").exists() and not data.with_name("data.tmp").exists()


_dat_field = st.one_of(st.integers(0, 10**6).map(str), st.sampled_from(["", "five", "3.5", "-1", "1e400", "x y"]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from(["1", "2", "3", ""]), st.sampled_from(["10", "20", "30", "99", ""]),
                               _dat_field, _dat_field), min_size=1, max_size=20))
def test_original_movielens_rows_with_defects_are_accounted(tmp_path_factory, rows):
    """The '::'-separated ratings.dat with random defects: every row is kept or dropped with its reason."""
    tmp = tmp_path_factory.mktemp("dat")
    folder = tmp / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("".join("::".join(r) + "\n" for r in rows), encoding="latin-1")
    (folder / "movies.dat").write_text("10::Heat (1995)::Action\n20::Casino (1995)::Drama\n30::Babe (1995)::Comedy\n",
                                       encoding="latin-1")
    try:
        stats = ingest(DataConfig(source="movielens-dir", path=str(folder)), tmp / "data")
    except IngestError:
        return
    report = json.loads((tmp / "data" / "ingest_report.json").read_text())
    _balanced(report)
    ratings = _file(report, "ratings.dat")
    assert ratings["read"] == len(rows) and ratings["kept"] == stats["interactions"]
    rejected = pd.read_parquet(tmp / "data" / "rejected.parquet")
    assert len(rejected) == sum(f["dropped"] for f in report["files"])
    unparsable = rejected[rejected["reason"] == "unparsable_value"]
    for line, field_name, raw in zip(unparsable["line"], unparsable["field"], unparsable["raw"], strict=True):
        rating, stamp = rows[line - 1][2], rows[line - 1][3]
        assert raw == (rating if field_name == "rating" else stamp)
