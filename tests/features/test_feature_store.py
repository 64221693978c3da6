"""The features step against a real Feast store (sqlite online, parquet offline) built from the committed
feature_repo/ files on a tiny generated dataset. feast is imported once for the whole module."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lcrec.config import FeaturesConfig, Params
from lcrec.data.schema import write_tables
from lcrec.features import frames, layout, store

REPO = Path(__file__).resolve().parents[2]
HISTORY_LEN = 4


def copy_feature_repo(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("feature_store.yaml", "features.py"):
        shutil.copy(REPO / "feature_repo" / name, dest / name)
    return dest


def make_dataset(data_dir: Path, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_users, n_items = 12, 20
    rows = []
    for u in range(n_users):
        for _ in range(rng.integers(3, 9)):
            rating = float(rng.integers(1, 6)) if u % 4 else np.nan  # every 4th user has implicit feedback
            rows.append(
                (f"u{u}", f"i{rng.integers(0, n_items - 2)}", int(rng.integers(1_000, 1_060)), rating)
            )
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"]).sample(
        frac=1, random_state=1
    )
    inter["review"] = ""
    ids = [f"i{k}" for k in range(n_items)]  # the last two items have no interactions
    items = pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"Title {k}" for k in range(n_items)],
            "description": "",
            "categories": [f"Cat{k % 3}, Drama" for k in range(n_items)],
            "brand": "",
            "text": [f"Title {k}. Genres: Cat{k % 3}." for k in range(n_items)],
        }
    )
    write_tables(data_dir, inter, items, pd.DataFrame({"user_id": sorted(set(inter.user_id))}))
    return inter, items


def expected_history(inter: pd.DataFrame, user: str, n: int) -> list[str]:
    """Independent reference: a user's items sorted by time (ties in file order), last n."""
    rows = [
        (t, pos, i)
        for pos, (u, i, t) in enumerate(zip(inter.user_id, inter.item_id, inter.timestamp, strict=True))
        if u == user
    ]
    return [i for _t, _pos, i in sorted(rows)][-n:]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    inter, items = make_dataset(root / "data")
    index = {f"i{k}": [f"<a_{k % 5}>", f"<b_{k}>"] for k in range(0, 20, 2)}  # even items have codes
    index["ghost"] = ["<a_9>", "<b_9>"]  # in the index, not in the catalogue
    (root / "index.json").write_text(json.dumps(index))
    repo = copy_feature_repo(root / "repo")
    stats = store.build_feature_store(
        FeaturesConfig(history_len=HISTORY_LEN), root / "data", repo, root / "index.json"
    )
    return {
        "root": root,
        "repo": repo,
        "inter": inter,
        "items": items,
        "index": index,
        "stats": stats,
        "store": store.open_store(repo),
    }


def test_build_stats_count_the_data(built):
    stats, inter = built["stats"], built["inter"]
    assert stats["n_items"] == 20 and stats["n_catalogue_items"] == 20
    assert stats["n_items_with_codes"] == 10 and stats["n_index_items_not_in_catalogue"] == 1
    assert stats["n_users"] == inter.user_id.nunique()
    assert stats["n_user_rows"] == len(inter.drop_duplicates(["user_id", "timestamp"]))
    assert stats["materialized"] and stats["n_topk_rows"] == 0
    for name in (layout.ITEM_SOURCE_FILE, layout.USER_SOURCE_FILE, layout.TOPK_SOURCE_FILE):
        assert (built["repo"] / name).exists()


def test_online_item_features_match_catalogue_and_index(built):
    got = store.get_item_features(built["store"], ["i2", "i3", "nope", "i19"])
    items = built["items"].set_index("item_id")
    for iid in ("i2", "i3", "i19"):
        assert got[iid]["title"] == items.loc[iid, "title"]
        assert got[iid]["text"] == items.loc[iid, "text"]
        assert got[iid]["categories"] == items.loc[iid, "categories"]
    assert got["i2"]["codes"] == "".join(built["index"]["i2"])  # filled from index.json
    assert got["i3"]["codes"] == ""  # not in the index yet
    assert got["nope"] is None
    assert list(got) == ["i2", "i3", "nope", "i19"]


def test_online_user_features_hold_recent_history(built):
    inter = built["inter"]
    users = sorted(inter.user_id.unique())
    got = store.get_user_features(built["store"], users + ["stranger"])
    assert got["stranger"] is None
    for user in users:
        mine = inter[inter.user_id == user]
        row = got[user]
        assert row["recent_items"] == expected_history(inter, user, HISTORY_LEN)
        assert row["n_interactions"] == len(mine)
        assert row["last_timestamp"] == mine.timestamp.max()
        if mine.rating.notna().any():
            assert row["mean_rating"] == pytest.approx(mine.rating.mean())
        else:
            assert row["mean_rating"] is None


def test_historical_reads_are_point_in_time(built):
    inter = built["inter"]
    user = inter.user_id.value_counts().index[0]
    mine = inter[inter.user_id == user]
    times = sorted(mine.timestamp.unique())
    t = int(times[len(times) // 2])
    entity_df = pd.DataFrame({"user_id": [user], "event_timestamp": [pd.Timestamp(t, unit="s", tz="UTC")]})
    df = (
        built["store"]
        .get_historical_features(
            entity_df=entity_df,
            features=[f"{layout.USER_VIEW}:recent_items", f"{layout.USER_VIEW}:n_interactions"],
        )
        .to_df()
    )
    before = inter[inter.timestamp <= t]
    assert frames.split_history(df.loc[0, "recent_items"]) == expected_history(before, user, HISTORY_LEN)
    assert df.loc[0, "n_interactions"] == int((before.user_id == user).sum())


def test_push_new_item_then_read_it_online_and_offline(built):
    st = built["store"]
    new = pd.DataFrame(
        {
            "item_id": ["new-1"],
            "title": ["Brand New"],
            "text": ["Brand New. Genres: Cat1."],
            "categories": ["Cat1"],
        }
    )
    assert store.get_item_features(st, ["new-1"])["new-1"] is None
    assert store.push_new_items(st, new, codes={"new-1": "<a_4><b_77>"}) == 1
    got = store.get_item_features(st, ["new-1", "i0"])
    assert got["new-1"] == {
        "title": "Brand New",
        "text": "Brand New. Genres: Cat1.",
        "categories": "Cat1",
        "codes": "<a_4><b_77>",
    }
    assert got["i0"]["title"] == "Title 0"  # untouched
    offline = pd.read_parquet(built["repo"] / layout.ITEM_SOURCE_FILE)
    assert "new-1" in set(offline.item_id) and len(offline) == 21


def test_push_and_read_back_topk(built):
    st = built["store"]
    rows = [
        {
            "user_id": "u1",
            "item_ids": ["i5", "i7", "i2"],
            "scores": [-0.1, -0.7, -1.5],
            "index_version": "abc",
            "history_hash": "h1",
        },
        {"user_id": "u2", "item_ids": ["i1"], "scores": [0.0], "index_version": "abc", "history_hash": "h2"},
    ]
    assert store.push_topk(st, rows) == 2
    got = store.get_topk(st, ["u1", "u2", "u3"])
    assert got["u1"]["item_ids"] == ["i5", "i7", "i2"]
    assert got["u1"]["scores"] == pytest.approx([-0.1, -0.7, -1.5])
    assert got["u1"]["index_version"] == "abc" and got["u1"]["history_hash"] == "h1"
    assert got["u2"]["item_ids"] == ["i1"]
    assert got["u3"] is None
    # a newer push replaces the cached list
    store.push_topk(st, [{"user_id": "u1", "item_ids": ["i9"], "scores": [1.0], "index_version": "def"}])
    assert store.get_topk(st, ["u1"])["u1"]["item_ids"] == ["i9"]


def test_rerun_keeps_pushed_items_and_offline_topk(built):
    st, repo, root = built["store"], built["repo"], built["root"]
    store.push_new_items(st, pd.DataFrame({"item_id": ["new-2"], "title": ["Second"]}), codes={})
    for user in ("u4", "u5"):  # two offline pushes: the second must accept the file the first one wrote
        store.push_topk(
            st,
            [{"user_id": user, "item_ids": ["i3"], "scores": [0.5], "index_version": "v"}],
            to="online_and_offline",
        )
    stats = store.build_feature_store(
        FeaturesConfig(history_len=HISTORY_LEN), root / "data", repo, root / "index.json"
    )
    assert stats["n_pushed_items_kept"] >= 1 and stats["n_topk_rows"] == 2
    assert layout.TOPK_VIEW in stats["materialized_views"]
    fresh = store.open_store(repo)
    assert store.get_item_features(fresh, ["new-2"])["new-2"]["title"] == "Second"
    assert store.get_topk(fresh, ["u4"])["u4"]["item_ids"] == ["i3"]


def test_push_rejects_unknown_target(built):
    with pytest.raises(ValueError, match="online_and_offline"):
        store.push_topk(built["store"], [{"user_id": "u", "item_ids": ["a"], "scores": [1.0]}], to="nowhere")


def test_run_features_fills_codes_once_an_index_exists(tmp_path):
    make_dataset(tmp_path / "work" / "data", seed=3)
    copy_feature_repo(tmp_path / "fr")
    params = Params()
    params.paths.work_dir = str(tmp_path / "work")
    params.paths.feature_repo = str(tmp_path / "fr")
    params.tracking.enabled = False
    stats = store.run_features(params)
    assert stats["n_items_with_codes"] == 0 and stats["index_version"] == ""
    assert json.loads((tmp_path / "work" / "features" / "stats.json").read_text())["n_items"] == 20
    assert store.get_item_features(store.open_store(tmp_path / "fr"), ["i1"])["i1"]["codes"] == ""

    (tmp_path / "work" / "index").mkdir()
    (tmp_path / "work" / "index" / "index.json").write_text(json.dumps({"i1": ["<a_3>", "<b_1>", "<c_0>"]}))
    stats = store.run_features(params)
    assert stats["n_items_with_codes"] == 1 and stats["index_version"]
    assert (
        store.get_item_features(store.open_store(tmp_path / "fr"), ["i1"])["i1"]["codes"] == "<a_3><b_1><c_0>"
    )


def test_missing_repo_config_says_what_to_do(tmp_path):
    make_dataset(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match="feature_store.yaml"):
        store.build_feature_store(FeaturesConfig(), tmp_path / "data", tmp_path / "empty-repo")


# ------------------------------------------------------------------------------------------------ crash safety
# kill -9 during the features step (after the sources, after apply, after materialize) leaves a feature store that
# answers online reads, and the next run succeeds; a registry torn by an interrupted write is restored.


def _features(tmp_path, crash_at=None):
    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  work_dir: {tmp_path / 'work'}\n  feature_repo: {tmp_path / 'repo'}\n"
                      "tracking:\n  enabled: false\n")
    env = {**os.environ}
    env.pop(store.CRASH_ENV, None)
    if crash_at:
        env[store.CRASH_ENV] = crash_at
    return subprocess.run([sys.executable, "-m", "lcrec.cli", "features", "--params", str(params)], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_kill_9_during_features_keeps_the_store_readable_and_a_rerun_succeeds(tmp_path):
    copy_feature_repo(tmp_path / "repo")
    make_dataset(tmp_path / "work" / "data")
    first = _features(tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    for point in store.CRASH_POINTS:
        killed = _features(tmp_path, crash_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        fs = store.open_store(tmp_path / "repo")
        got = store.get_item_features(fs, ["i1", "nope"])
        assert got["i1"]["title"] == "Title 1" and got["nope"] is None, point
        assert store.get_user_features(fs, ["u1"])["u1"] is not None, point
    again = _features(tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]


@pytest.mark.slow
def test_a_torn_registry_is_restored_from_the_last_complete_run(tmp_path):
    copy_feature_repo(tmp_path / "repo")
    make_dataset(tmp_path / "work" / "data")
    assert _features(tmp_path).returncode == 0
    registry = tmp_path / "repo" / store.REGISTRY
    good = registry.read_bytes()
    registry.write_bytes(good[: len(good) // 2] + b"\x0a\xff\xff")  # a write cut short
    assert store.recover_registry(tmp_path / "repo")
    assert registry.read_bytes() == good
    fs = store.open_store(tmp_path / "repo")
    assert store.get_item_features(fs, ["i2"])["i2"]["title"] == "Title 2"
    assert not store.recover_registry(tmp_path / "repo")  # an intact registry is left alone


def test_run_features_carries_the_user_codes_once_a_user_index_is_published(tmp_path):
    import numpy as np

    from lcrec.quantize.index_file import USER_PREFIX, CodeIndex, write_index
    from lcrec.users.user_index import publish

    inter, _ = make_dataset(tmp_path / "work" / "data", seed=4)
    copy_feature_repo(tmp_path / "fr")
    params = Params()
    params.paths.work_dir = str(tmp_path / "work")
    params.paths.feature_repo = str(tmp_path / "fr")
    params.tracking.enabled = False
    users = sorted(inter.user_id.unique())
    stats = store.run_features(params)
    assert stats["n_users_with_codes"] == 0 and stats["user_index_version"] is None
    assert store.get_user_features(store.open_store(tmp_path / "fr"), users[:1])[users[0]]["user_code"] == ""

    coded = users[:2]

    def build(folder: Path) -> dict:
        folder.mkdir(parents=True)
        index = CodeIndex(coded, np.asarray([[1, 2], [3, 0]]), 4, prefix=USER_PREFIX)
        return {"version": write_index(folder, index, "test")["version"]}

    version = publish(tmp_path / "work" / "user_index", build)["version"]
    stats = store.run_features(params)
    assert stats["n_users_with_codes"] == 2 and stats["user_index_version"] == version
    got = store.get_user_features(store.open_store(tmp_path / "fr"), users[:3])
    assert got[coded[0]]["user_code"] == "<ua_1><ub_2>" and got[coded[1]]["user_code"] == "<ua_3><ub_0>"
    assert got[users[2]]["user_code"] == ""
