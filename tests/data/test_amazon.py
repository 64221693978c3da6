import gzip
import json

import pytest

from lcrec.data.account import IngestAccount, IngestError
from lcrec.data.amazon import read_amazon2018


def _write(tmp_path, gz=True):
    reviews = [
        {"reviewerID": "U1", "asin": "A1", "overall": 5.0, "unixReviewTime": 1500000000, "reviewText": "Great &amp; loud", "summary": "Nice"},
        {"reviewerID": "U1", "asin": "A2", "overall": 3.0, "unixReviewTime": 1500000100, "reviewText": "ok"},
        {"reviewerID": "U1", "asin": "A1", "overall": 4.0, "unixReviewTime": 1500000200, "reviewText": "again"},
        {"reviewerID": "U2", "asin": "A3", "overall": 4.0, "unixReviewTime": 1500000300},  # item without title
    ]
    meta = [
        {"asin": "A1", "title": "Fender <i>Strat</i>", "description": ["A guitar.", "Loud."], "brand": "Fender", "category": ["Musical Instruments", "Guitars"]},
        {"asin": "A2", "title": "Picks", "description": ["x" * 3000], "category": []},
        {"asin": "A3", "title": "", "description": []},
    ]
    opener = (lambda p: gzip.open(p, "wt")) if gz else (lambda p: open(p, "w"))
    suffix = ".json.gz" if gz else ".json"
    with opener(tmp_path / f"Instruments{suffix}") as fh:
        fh.write("\n".join(json.dumps(r) for r in reviews))
    with opener(tmp_path / f"meta_Instruments{suffix}") as fh:
        # the 2014 dumps are Python literals, not JSON: accept both
        fh.write(json.dumps(meta[0]) + "\n" + repr(meta[1]) + "\n" + json.dumps(meta[2]) + "\n")


@pytest.mark.parametrize("gz", [True, False])
def test_amazon_reviews_and_meta(tmp_path, gz):
    _write(tmp_path, gz)
    inter, items, users = read_amazon2018(tmp_path, "Instruments")
    assert list(inter["item_id"]) == ["A1", "A2"]  # A3 has no title, repeated (U1, A1) keeps the first
    assert inter.iloc[0]["review"] == "Nice. Great & loud"
    got = items.set_index("item_id")
    assert got.loc["A1", "title"] == "Fender Strat"
    assert got.loc["A1", "description"] == "A guitar. Loud."
    assert got.loc["A1", "categories"] == "Musical Instruments, Guitars"
    assert got.loc["A2", "description"] == ""  # >= 2000 characters is blanked
    assert "A3" not in got.index
    assert list(users["user_id"]) == ["U1"]


def test_amazon_missing_files_say_what_to_set(tmp_path):
    with pytest.raises(IngestError, match="data.name"):
        read_amazon2018(tmp_path, "Instruments")


def test_amazon_bad_line_is_dropped_with_its_file_and_line(tmp_path):
    (tmp_path / "X.json").write_text('{"reviewerID": "U"}\nnot json at all\n')
    (tmp_path / "meta_X.json").write_text("")
    account = IngestAccount()
    inter, items, _ = read_amazon2018(tmp_path, "X", account=account)
    assert len(inter) == 0 and len(items) == 0
    reviews = account.files[str(tmp_path / "X.json")]
    assert reviews.read == 2 and dict(reviews.dropped) == {"missing_id": 1, "not_a_record": 1}
    bad = [r for r in account.rejected if r["reason"] == "not_a_record"]
    assert bad[0]["line"] == 2 and bad[0]["raw"] == "not json at all"


@pytest.mark.parametrize("reviews,meta", [("Musical_Instruments.json.gz", "meta_Musical_Instruments.json.gz"),
                                          ("Musical_Instruments_5.json.gz", "meta_Musical_Instruments.json.gz"),
                                          ("reviews_Musical_Instruments_5.json.gz", "meta_Musical_Instruments.json.gz"),
                                          ("reviews_Musical_Instruments.json", "meta_Musical_Instruments.json")])
def test_file_names_as_users_download_them(tmp_path, reviews, meta):
    opener = (lambda p: gzip.open(p, "wt")) if reviews.endswith(".gz") else (lambda p: open(p, "w"))
    with opener(tmp_path / reviews) as fh:
        fh.write(json.dumps({"reviewerID": "U1", "asin": "A1", "overall": 5.0, "unixReviewTime": 1500000000}))
    with opener(tmp_path / meta) as fh:
        fh.write(json.dumps({"asin": "A1", "title": "Strat"}))
    inter, items, _ = read_amazon2018(tmp_path, "Musical_Instruments")
    assert list(inter["item_id"]) == ["A1"] and list(items["title"]) == ["Strat"]
