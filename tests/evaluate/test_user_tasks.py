"""The user side of evaluation: with/without the user in the prompt (paired), user prediction under a user trie,
rating RMSE/MAE; and, end to end over the fixture, a model trained with the user families is scored on them."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tasks"))

from movielens_fixture import USER_CODES, write_fixture, write_user_index  # noqa: E402

from lcrec.config import DecodeConfig, EvaluateConfig, TasksConfig, TrainConfig  # noqa: E402
from lcrec.evaluate.user_tasks import (  # noqa: E402
    most_active,
    paired,
    rmse_mae,
    split_code,
    with_and_without_user,
)


def test_paired_difference_and_its_standard_error_by_hand():
    out = paired([1.0, 0.0, 0.5], [0.0, 0.0, 0.5])
    assert out["diff"] == pytest.approx(1 / 3)
    # diffs 1, 0, 0: sample variance 1/3, se = sqrt(1/3 / 3) = 1/3
    assert out["se"] == pytest.approx(1 / 3) and out["users"] == 3


def test_with_and_without_user_pairs_each_user_over_the_pools_templates():
    rows = [{"user_id": "u1", "template": "useq/0", "target_item": "a"},
            {"user_id": "u1", "template": "useq/1", "target_item": "a"},
            {"user_id": "u1", "template": "seqall/0", "target_item": "a"},
            {"user_id": "u2", "template": "useq/0", "target_item": "b"},
            {"user_id": "u2", "template": "seqall/0", "target_item": "b"}]
    ranked = [["a"], ["x", "a"], ["x"], [["b", "c"]], ["x", "y", "b"]]
    out = with_and_without_user(rows, ranked, [1, 10])
    assert out["with"] == "useq" and out["without"] == "seqall" and out["users"] == 2
    u1_with = (1.0 + 1 / math.log2(3)) / 2  # mean of its two useq templates
    assert out["ndcg@10"]["with_user"] == pytest.approx((u1_with + 1.0) / 2)
    assert out["ndcg@10"]["without_user"] == pytest.approx((0.0 + 1 / math.log2(4)) / 2)
    assert out["hr@1"]["with_user"] == pytest.approx((0.5 + 1.0) / 2)
    assert with_and_without_user([r for r in rows if r["template"] != "seqall/0"], ranked[:2] + ranked[3:4],
                                 [10]) is None


def test_rmse_mae_and_most_active_by_hand():
    assert rmse_mae([3.0, 5.0], [4.0, 4.0]) == {"rmse": 1.0, "mae": 1.0}
    train = {"u1": ["a"], "u2": ["a", "b", "c"], "u3": ["a", "b"], "u4": ["a", "b"]}
    assert most_active(train, ["u1", "u2", "u3", "u4"], 3) == ["u2", "u3", "u4"]
    assert split_code("<ua_1><ub_22>") == ["<ua_1>", "<ub_22>"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from lcrec.tasks.tasks import build_tasks
    from lcrec.train.train import train_model

    root = tmp_path_factory.mktemp("user_eval")
    dirs = write_fixture(root)
    users = write_user_index(root)
    build_tasks(TasksConfig(families=["seqall", "useq", "user"], epochs=2), dirs["split"], dirs["index"],
                root / "tasks", dirs["data"], user_index_dir=users)
    cfg = TrainConfig(backbone="tiny-llama", mode="lora", max_steps=4, batch_size=4, lr=1e-2, logging_steps=1,
                      save_steps=100, max_len=256, seed=7, bf16="false")
    stats = train_model(cfg, root / "tasks", dirs["index"], root / "train")
    return {**dirs, "root": root, "tasks": root / "tasks", "model": root / "train" / "model", "stats": stats}


def test_the_train_step_adds_the_user_grid_and_ships_the_user_codes(trained):
    from lcrec.model.trained import ModelManifest, load_trained

    stats = trained["stats"]
    assert stats["user_tokens"] == 2 * 4  # the whole 2 x 4 user codebook, not only the used codes
    manifest = ModelManifest.read(trained["model"])
    assert manifest.user_tokens[:2] == ["<ua_0>", "<ua_1>"] and "useq" in manifest.families
    assert json.loads((trained["model"] / "user_codes.json").read_text())["codes"] == USER_CODES
    model, tok = load_trained(trained["model"], merge=True)  # LoRA: the base is rebuilt with the user tokens too
    assert all(len(tok(c, add_special_tokens=False)["input_ids"]) == 2 for c in USER_CODES.values())


def test_evaluate_scores_the_user_side(trained, tmp_path):
    from lcrec.evaluate.evaluate import evaluate_model, flat_metrics

    metrics = evaluate_model(EvaluateConfig(max_users=0, title_items=0, ite=False, valid=False, templates=["seqall/0"]),
                             trained["model"],
                             trained["tasks"], trained["index"], trained["split"], tmp_path,
                             decode=DecodeConfig(beam_width=5, top_k=5), progress=False)
    both = metrics["user_in_prompt"]
    assert both["with"] == "useq" and both["without"] == "seqall" and both["users"] == 3
    assert 0.0 <= both["ndcg@10"]["with_user"] <= 1.0
    pred = metrics["user_prediction"]
    assert pred["rows"] == 2 and pred["users"] == 3  # u1 and u3 (nobody else chose u2's test item in training)
    assert set(pred["model"]) >= {"hr@10", "ndcg@10"}
    # the most-active list is u2 (4 training items), u1 (3), u3 (2): every target is in it within 3 places
    assert pred["most_active"]["hr@5"] == 1.0
    rating = metrics["rating"]
    assert rating["rows"] == 3
    assert 0.0 <= rating["expected"]["mae"] <= rating["expected"]["rmse"] <= 4.0
    assert rating["most_likely"]["mae"] in {n / 3 for n in range(13)}  # whole stars against whole stars
    assert rating["user_mean"]["mae"] == pytest.approx(
        (abs(5 - 4.0) + abs(1 - 4.25) + abs(2 - 4.0)) / 3)  # test ratings 5, 1, 2; user means 4, 4.25, 4
    flat = flat_metrics(metrics)
    assert "user_prediction.model.ndcg@10" in flat and "rating.expected.rmse" in flat
    assert "user_in_prompt.ndcg@10.with_user" in flat


def test_user_prediction_answers_only_real_users(trained):
    from lcrec.evaluate.user_tasks import evaluate_user_prediction
    from lcrec.model.trained import load_trained
    from lcrec.serve.recommend import rank_prompts

    model, tok = load_trained(trained["model"], merge=True)
    rows = [json.loads(line) for line in (trained["tasks"] / "test_user.jsonl").read_text().splitlines()]
    train_items = {"u1": ["1"], "u2": ["1", "2"], "u3": []}
    out = evaluate_user_prediction(model, tok, rows, USER_CODES, train_items, DecodeConfig(beam_width=3, top_k=3),
                                   [1, 3])
    assert out["most_active"]["hr@3"] == 1.0  # three users: the whole list
    from lcrec.decode.trie import CodeTrie
    from lcrec.evaluate.user_tasks import full_vocabulary_scoring

    trie = CodeTrie.from_index({u: split_code(c) for u, c in USER_CODES.items()}, tok)
    with full_vocabulary_scoring(model):
        result = rank_prompts(model, trie, [tok(r["instruction"])["input_ids"] for r in rows], 3, 3)
    answered = {i for recs in result.recommendations for r in recs for i in r.items}
    assert answered <= set(USER_CODES)
    assert model.config.code_score_norm == "level"  # restored after the user decode


def test_a_model_trained_with_the_user_in_the_prompt_names_the_user_when_served(trained, tmp_path):
    from lcrec.serve.model_version import ServedModel, load_index_state, served_user_codes
    from lcrec.serve.recommend import history_prompt
    from lcrec.tasks.templates import next_item_prompt

    codes = served_user_codes(trained["model"], ["seqall", "useq", "user"])
    assert codes == USER_CODES
    assert served_user_codes(trained["model"], ["seqall"]) == {}  # trained without: history-only prompts
    from lcrec.model.trained import load_trained

    model, tok = load_trained(trained["model"], merge=True)
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    (index_dir / "index.json").write_text(trained["index"].read_text())
    state = load_index_state(index_dir, tok)
    served = ServedModel(model, tok, "v1", "seqall/0", 20, ("seqall", "useq", "user"), codes)
    named = history_prompt(served, state, ["1", "2"], "u1")
    anonymous = history_prompt(served, state, ["1", "2"], "stranger")
    hist = f"{state.codes['1']}, {state.codes['2']}"
    assert tok.decode(named.prompt_ids, skip_special_tokens=True).endswith(
        next_item_prompt(hist, "useq/0", USER_CODES["u1"]).split("### Instruction:\n")[1])
    assert USER_CODES["u1"] in tok.decode(named.prompt_ids)
    assert tok.decode(anonymous.prompt_ids).endswith(next_item_prompt(hist, "seqall/0").split("### Instruction:\n")[1])
    assert named.history_hash != anonymous.history_hash  # the cache key covers the user named in the prompt
    plain = ServedModel(model, tok, "v1", "seqall/0", 20, ("seqall",), {})
    assert history_prompt(plain, state, ["1", "2"], "u1").prompt_ids == anonymous.prompt_ids
