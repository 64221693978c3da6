"""The user index: codes in a namespace no item code can take, collision-free, from profile + training history
(MiniLM) and the SASRec-CE state; new users get codes from the frozen quantizer; a kill at any moment of a
publish leaves the previous version current and readable."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lcrec.config import QuantizeConfig, UserIndexConfig, load_params
from lcrec.quantize.index_file import (
    CODE_TOKEN,
    USER_CODE_TOKEN,
    USER_PREFIX,
    code_tokens,
    parse_tokens,
    read_index,
)
from lcrec.steps import run
from lcrec.users.user_index import (
    CURRENT,
    VERSIONS,
    current_dir,
    current_version,
    do_user_index,
    read_user_codes,
    user_vectors,
)
from lcrec.users.user_text import UserText
from split_fixture import write_split

SCARY = ["Alien", "The Shining", "Halloween", "The Thing", "Psycho", "Scream", "The Ring", "It Follows"]
FUNNY = ["Airplane!", "Groundhog Day", "Home Alone", "Big", "Clueless", "Elf", "Dumb and Dumber", "Superbad"]
TITLES = SCARY + FUNNY
CATALOGUE = [f"i{k}" for k in range(len(TITLES))]
SMALL = ["user_index.epochs=60", "user_index.num_levels=2", "user_index.codebook_size=8", "user_index.code_dim=8",
         "user_index.max_length=48", "user_index.batch_size=64", "quantize.kmeans_iters=5", "embed.device=cpu",
         "quantize.device=cpu", "tracking.enabled=false"]


# ------------------------------------------------------------------------------------------------ namespaces
@given(st.lists(st.integers(0, 4095), min_size=1, max_size=6))
def test_user_and_item_token_namespaces_are_disjoint(row):
    items = code_tokens(np.asarray([row]))[0]
    users = code_tokens(np.asarray([row]), USER_PREFIX)[0]
    assert not set(items) & set(users)
    assert all(CODE_TOKEN.fullmatch(t) and not USER_CODE_TOKEN.fullmatch(t) for t in items)
    assert all(USER_CODE_TOKEN.fullmatch(t) and not CODE_TOKEN.fullmatch(t) for t in users)
    assert parse_tokens(users, prefix=USER_PREFIX) == row
    with pytest.raises(ValueError, match="not of the form <a_N>"):
        parse_tokens(users)  # a user code never reads as an item code
    with pytest.raises(ValueError, match="not of the form <ua_N>"):
        parse_tokens(items, prefix=USER_PREFIX)


# ------------------------------------------------------------------------------------------------ the step
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """40 users: half watch horror, half comedies (with their own profiles); a SASRec-CE retriever from the
    baselines step; user-index run through the step table."""
    from lcrec.baselines.baselines import run_baselines_on
    from lcrec.config import BaselinesConfig, SasrecConfig

    work = tmp_path_factory.mktemp("users")
    rng = random.Random(0)
    seqs, profiles = {}, []
    for u in range(40):
        pool = CATALOGUE[:8] if u % 2 == 0 else CATALOGUE[8:]
        seqs[str(u)] = rng.sample(pool, 7)
        profiles.append({"user_id": str(u), "gender": "F" if u % 2 == 0 else "M", "age": 18 + 7 * (u % 2),
                         "occupation": "nurse" if u % 2 == 0 else "student"})
    write_split(work / "split", seqs, CATALOGUE)
    pd.DataFrame({"item_id": CATALOGUE, "title": TITLES}).to_parquet(work / "split" / "items.parquet", index=False)
    (work / "data").mkdir()
    pd.DataFrame(profiles).to_parquet(work / "data" / "users.parquet", index=False)
    sasrec = SasrecConfig(hidden=16, heads=2, blocks=1, max_len=8, epochs=3, patience=5, max_minutes=0, seed=0,
                          device="cpu")
    run_baselines_on(BaselinesConfig(models=["sasrec"]), work / "split", work / "baselines", progress=False,
                     sasrec=sasrec)
    params = load_params(None, [f"paths.work_dir={work}", *SMALL])
    stats = run("user-index", params)
    return {"dir": work, "params": params, "stats": stats, "seqs": seqs}


def test_every_user_gets_a_unique_user_code(work):
    stats, root = work["stats"], work["dir"] / "user_index"
    assert stats["users"] == 40 and stats["collision_rate"] == 0.0 and stats["behaviour"] is True
    assert stats["users_without_text"] == 0 and stats["vector_dim"] == 384 + 16  # MiniLM + SASRec state
    codes = read_user_codes(root)
    assert sorted(codes, key=int) == [str(u) for u in range(40)]
    assert len(set(codes.values())) == 40
    assert all(USER_CODE_TOKEN.fullmatch(t) for c in codes.values() for t in c.replace(">", "> ").split())
    index = read_index(current_dir(root))
    assert index.prefix == USER_PREFIX and index.meta["token_prefix"] == USER_PREFIX
    texts = [json.loads(line) for line in (current_dir(root) / "user_text.jsonl").read_text().splitlines()]
    assert texts[0]["text"].startswith("A user (gender: female, age: 18, occupation: nurse). Watched or bought:")


def test_similar_users_share_their_first_code_more_than_chance(work):
    stats = work["stats"]
    assert stats["nn_first_code_agreement"] > stats["nn_first_code_agreement_random"] + 0.2
    codes = read_user_codes(work["dir"] / "user_index")
    first = {u: c.split(">")[0] for u, c in codes.items()}
    same = np.mean([first[str(a)] == first[str(b)] for a in range(40) for b in range(a + 1, 40) if a % 2 == b % 2])
    cross = np.mean([first[str(a)] == first[str(b)] for a in range(40) for b in range(a + 1, 40) if a % 2 != b % 2])
    assert same > cross


def test_the_same_data_and_seed_publish_the_same_version(work):
    again = run("user-index", work["params"])
    assert again["version"] == work["stats"]["version"]
    assert current_version(work["dir"] / "user_index") == again["version"]


def test_user_add_keeps_existing_codes_and_indexes_new_users(work, tmp_path):
    import shutil


    root = work["dir"] / "user_index"
    copy = tmp_path / "work"
    shutil.copytree(work["dir"], copy)
    params = load_params(None, [f"paths.work_dir={copy}", *SMALL])
    before = read_user_codes(copy / "user_index")
    new = tmp_path / "new.jsonl"
    new.write_text("\n".join(json.dumps(r) for r in [
        {"user_id": "100", "gender": "F", "history": ["i0", "i1", "i2"]},
        {"user_id": "101", "occupation": "writer"},  # profile only: text alone places them
        {"user_id": "3", "history": ["i9"]},  # already indexed: keeps the code it has
    ]) + "\n")
    stats = run("user-add", params, users_path=str(new))
    after = read_user_codes(copy / "user_index")
    assert stats["added"] == 2 and stats["collision_rate"] == 0.0
    assert {u: after[u] for u in before} == before
    assert set(after) - set(before) == {"100", "101"} and len(set(after.values())) == 42
    assert read_index(current_dir(copy / "user_index")).meta["parent"] == work["stats"]["version"]
    assert len(list((copy / "user_index" / VERSIONS).iterdir())) == 2  # the parent version is still there
    assert read_user_codes(root) == before  # the original folder is untouched
    assert run("user-add", params, users_path=str(new))["added"] == 0  # nothing new: nothing published


def test_a_user_with_neither_text_nor_behaviour_is_named():
    with pytest.raises(ValueError, match=r"1 users have neither text nor behaviour \(e.g. \[1\]\)"):
        user_vectors(["a", ""], lambda texts: np.ones((len(texts), 4), np.float32), None, 1.0)
    with pytest.raises(ValueError, match="no user vector"):
        user_vectors(["a"], None, None, 1.0)


def test_behaviour_alone_places_users_without_text(tmp_path):
    rng = np.random.default_rng(0)
    texts = [UserText(str(u), "", ()) for u in range(30)]
    stats = do_user_index(UserIndexConfig(num_levels=2, codebook_size=8, code_dim=4, epochs=20),
                          QuantizeConfig(kmeans_iters=5, device="cpu"), texts, tmp_path,
                          behaviour=rng.normal(size=(30, 6)), progress=False)
    assert stats["users"] == 30 and stats["users_without_text"] == 30 and stats["collision_rate"] == 0.0
    assert len(set(read_user_codes(tmp_path).values())) == 30


def test_nothing_published_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `lcrec user-index`"):
        read_user_codes(tmp_path)


# ------------------------------------------------------------------------------------------------ kill -9
KILLER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from lcrec.config import QuantizeConfig, UserIndexConfig
    from lcrec.quantize import index_file
    from lcrec.users import user_index
    from lcrec.users.user_text import UserText

    root, where = sys.argv[1], sys.argv[2]
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    if where == "building":
        index_file.atomic_write_bytes = die  # the new version's index.json, inside the temporary folder
    else:
        user_index.atomic_write_bytes = die  # the version folder is in place; `current` is about to move
    behaviour = np.random.default_rng(7).normal(size=(30, 6))
    user_index.do_user_index(UserIndexConfig(num_levels=2, codebook_size=8, code_dim=4, epochs=5, seed=7),
                             QuantizeConfig(kmeans_iters=5, device="cpu"),
                             [UserText(str(u), "", ()) for u in range(30)], root, behaviour=behaviour,
                             progress=False)
    print("not killed")
""")


@pytest.mark.parametrize("where", ["building", "publishing"])
def test_kill_9_during_a_publish_leaves_the_previous_version(tmp_path, where):
    texts = [UserText(str(u), "", ()) for u in range(30)]
    first = do_user_index(UserIndexConfig(num_levels=2, codebook_size=8, code_dim=4, epochs=5),
                          QuantizeConfig(kmeans_iters=5, device="cpu"), texts, tmp_path,
                          behaviour=np.random.default_rng(0).normal(size=(30, 6)), progress=False)
    before = read_user_codes(tmp_path)
    proc = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path), where], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    assert (tmp_path / CURRENT).read_text() == first["version"]
    assert read_user_codes(tmp_path) == before
    left = {p.name for p in (tmp_path / VERSIONS).iterdir()}
    if where == "building":
        assert any(n.startswith(".tmp-") for n in left)  # the half-built version never got a name
    else:
        assert len([n for n in left if not n.startswith(".")]) == 2  # whole, but not current
    # the next run publishes as usual
    again = do_user_index(UserIndexConfig(num_levels=2, codebook_size=8, code_dim=4, epochs=5, seed=7),
                          QuantizeConfig(kmeans_iters=5, device="cpu"), texts, tmp_path,
                          behaviour=np.random.default_rng(7).normal(size=(30, 6)), progress=False)
    assert (tmp_path / CURRENT).read_text() == again["version"] != first["version"]
    assert len(set(read_user_codes(tmp_path).values())) == 30


def test_the_store_layout(work):
    root = Path(work["dir"]) / "user_index"
    names = {p.name for p in current_dir(root).iterdir()}
    assert {"index.json", "index_meta.json", "quantizer.pt", "report.json", "user_text.jsonl"} <= names
