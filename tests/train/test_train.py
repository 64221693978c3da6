"""Recipe tests (torchtune style): the whole train step on the tiny model: the loss falls, a run resumed from
a mid-run checkpoint ends exactly where the uninterrupted run ends, and the MLflow run shows the curves."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from lcrec.config import Params, TrainConfig
from lcrec.model.registry import load_backbone
from lcrec.model.trained import load_trained
from lcrec.train.train import run_train, train_model


def _cfg(**kw) -> TrainConfig:
    base = dict(backbone="tiny-llama", mode="lora", lora_dropout=0.1, max_steps=6, batch_size=4, grad_accum=2,
                lr=1e-2, logging_steps=1, save_steps=3, max_len=256, seed=7, bf16="false")
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def uninterrupted(tiny_tasks, tmp_path_factory):
    tasks, index = tiny_tasks
    out = tmp_path_factory.mktemp("run_a")
    return train_model(_cfg(), tasks, index, out), out


def test_loss_falls_per_family(uninterrupted):
    stats, out = uninterrupted
    history = json.loads((out / "loss_history.json").read_text())
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 6 and sum(losses[-2:]) < sum(losses[:2]) - 0.3
    for fam in ("seq", "mut"):
        assert stats[f"final_loss_{fam}"] < stats[f"first_loss_{fam}"]
    assert stats["steps"] == 6 and stats["families"] == ["mut", "seq"]
    assert stats["tokens_per_s"] > 0 and "eval_loss" in stats
    for name in ("loss.png", "loss_seq.png", "loss_mut.png"):
        assert (out / "plots" / name).stat().st_size > 1000
    assert json.loads((out / "train_metrics.json").read_text())["final_loss"] == stats["final_loss"]
    # the same series as CSV for `dvc plots diff`
    from lcrec.tracking.series import read_series

    series = read_series(out / "loss_train.csv")
    assert [r["loss"] for r in series] == pytest.approx(losses) and "loss_seq" in series[0]
    valid = [h["eval_loss"] for h in history if "eval_loss" in h]
    assert valid and [r["eval_loss"] for r in read_series(out / "loss_valid.csv")] == pytest.approx(valid)


def test_trained_adapter_changed_only_code_token_rows(uninterrupted, tiny_tasks):
    stats, out = uninterrupted
    model, tok = load_trained(out / "model")
    base, base_tok = load_backbone("tiny-llama")
    emb = model.get_input_embeddings()(torch.arange(len(tok))).detach()
    old = base.get_input_embeddings().weight.detach()
    assert torch.equal(emb[: len(base_tok)], old)  # the backbone's own rows never move
    lo, hi = stats["code_token_ids"]
    mean = old.mean(0)
    moved = (emb[lo: hi + 1] - mean).abs().amax(dim=1)
    assert (moved > 1e-4).float().mean() > 0.5  # the code-token rows the data uses were learned
    assert tok.convert_ids_to_tokens([lo, hi]) == ["<a_0>", "<c_11>"]


def test_a_level_loss_model_is_decoded_with_the_level_softmax(uninterrupted):
    stats, out = uninterrupted
    assert stats["code_loss"] == "level"
    model, tok = load_trained(out / "model", merge=True)
    assert model.config.code_score_norm == "level"
    assert [tok.convert_ids_to_tokens(ids)[0] for ids in model.config.code_level_ids] == ["<a_0>", "<b_0>", "<c_0>"]
    assert [len(ids) for ids in model.config.code_level_ids] == [4, 3, 12]


def test_codebook_initialised_code_rows_follow_the_codebook(tiny_tasks, tmp_path):
    """train.code_token_init=codebook: code rows are the quantizer's (standardised) codebook vectors through a
    seeded projection, so their pairwise distances follow the codebook's; the same seed gives the same rows."""
    from lcrec.train.trainer import build_model

    tasks, index = tiny_tasks
    gen = torch.Generator().manual_seed(0)
    books = torch.randn(3, 12, 8, generator=gen)
    torch.save({"arch": {}, "state_dict": {"codebooks": books}, "hash": "x"}, index.with_name("quantizer.pt"))
    tokens = json.loads(index.read_text())
    codes = sorted({c for cs in tokens.values() for c in cs}, key=lambda t: (t[1], int(t[3:-1])))
    model, tok, ids = build_model(_cfg(mode="full", code_token_init="codebook"), codes, index)
    again, _, _ = build_model(_cfg(mode="full", code_token_init="codebook"), codes, index)
    rows = model.get_input_embeddings().weight[ids].detach()
    assert torch.equal(rows, again.get_input_embeddings().weight[ids].detach())
    c_rows = rows[[codes.index(f"<c_{k}>") for k in range(12)]]
    std = (books[2] - books[2].mean(0)) / books[2].std(0)
    model_d = torch.cdist(c_rows, c_rows).flatten()
    book_d = torch.cdist(std, std).flatten()
    corr = torch.corrcoef(torch.stack([model_d, book_d]))[0, 1]
    assert corr > 0.5, corr
    mean_model, _, mean_ids = build_model(_cfg(mode="full"), codes, index)
    assert torch.unique(mean_model.get_input_embeddings().weight[mean_ids].detach(), dim=0).shape[0] == 1
    with pytest.raises(ValueError, match="code_token_init"):
        build_model(_cfg(code_token_init="random"), codes, index)


def test_resume_from_a_mid_run_checkpoint_matches(uninterrupted, tiny_tasks, tmp_path):
    stats_a, out_a = uninterrupted
    tasks, index = tiny_tasks
    (tmp_path / "checkpoints").mkdir()
    shutil.copytree(out_a / "checkpoints" / "checkpoint-3", tmp_path / "checkpoints" / "checkpoint-3")
    stats_b = train_model(_cfg(), tasks, index, tmp_path, resume=True)
    assert stats_b["resumed_from"].endswith("checkpoint-3") and stats_b["steps"] == 6
    hist_a = {h["step"]: h for h in json.loads((out_a / "loss_history.json").read_text()) if "loss" in h}
    hist_b = {h["step"]: h for h in json.loads((tmp_path / "loss_history.json").read_text()) if "loss" in h}
    for step in (4, 5, 6):
        assert hist_b[step]["loss"] == pytest.approx(hist_a[step]["loss"], abs=1e-6)
        assert hist_b[step]["loss_seq"] == pytest.approx(hist_a[step]["loss_seq"], abs=1e-5)
    wa = load_file(out_a / "model" / "adapter_model.safetensors")
    wb = load_file(tmp_path / "model" / "adapter_model.safetensors")
    assert wa.keys() == wb.keys()
    assert any("trainable_tokens_delta" in k for k in wa)
    assert not [k for k in wa if "base_layer" in k]  # no full embedding copy in the adapter
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6), k


def test_resume_without_checkpoint_says_what_to_do(tiny_tasks, tmp_path):
    tasks, index = tiny_tasks
    with pytest.raises(FileNotFoundError, match="run without --resume"):
        train_model(_cfg(), tasks, index, tmp_path, resume=True)
    with pytest.raises(FileNotFoundError, match="lcrec tasks"):
        train_model(_cfg(), tmp_path, index, tmp_path)


def test_run_train_logs_curves_to_mlflow(tiny_tasks, tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    tasks, index = tiny_tasks
    work = tmp_path / "work"
    shutil.copytree(tasks, work / "tasks")
    (work / "index").mkdir()
    shutil.copy(index, work / "index" / "index.json")
    params = Params()
    params.paths.work_dir = str(work)
    params.train = _cfg(max_steps=3, save_steps=100, mode="full")
    stats = run_train(params)
    assert (work / "train" / "model" / "model.safetensors").exists()
    assert (work / "train" / "model" / "lcrec_model.json").exists()
    client = MlflowClient(mlflow.get_tracking_uri())
    run = client.get_run(stats["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["mode"] == "full" and run.data.params["backbone"] == "tiny-llama"
    curve = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in curve] == [1, 2, 3]
    assert len(client.get_metric_history(run.info.run_id, "loss_seq")) == 3
    assert "final.final_loss" in run.data.metrics
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"train_metrics.json", "plots"} <= arts


def test_time_limit_stops_after_the_crossing_step_and_saves(tiny_tasks, tmp_path):
    tasks, index = tiny_tasks
    stats = train_model(_cfg(max_steps=50, save_steps=100, max_minutes=1e-6), tasks, index, tmp_path)
    assert stats["stopped_by"] == "time" and stats["steps"] == 1
    assert (tmp_path / "model" / "adapter_model.safetensors").exists()
    assert json.loads((tmp_path / "train_metrics.json").read_text())["steps"] == 1
    with pytest.raises(ValueError, match="max_minutes"):
        train_model(_cfg(max_minutes=-1.0), tasks, index, tmp_path)


def test_no_time_limit_runs_every_step(uninterrupted):
    stats, _ = uninterrupted
    assert stats["stopped_by"] == "steps" and stats["steps"] == 6


def test_warm_restart_from_a_trained_full_model(tiny_tasks, tmp_path):
    """``train.backbone=hf:<a trained model dir>`` continues from its weights: the code tokens it already has are
    reused (same ids, no duplicates) and the new run starts from the trained loss, not the random one."""
    tasks, index = tiny_tasks
    first = train_model(_cfg(mode="full", lr=3e-3), tasks, index, tmp_path / "a")
    again = train_model(_cfg(mode="full", lr=1e-3, backbone=f"hf:{tmp_path / 'a' / 'model'}"), tasks, index,
                        tmp_path / "b")
    assert again["code_token_ids"] == first["code_token_ids"]
    assert again["total_params"] == first["total_params"]
    _, tok_a = load_trained(tmp_path / "a" / "model")
    _, tok_b = load_trained(tmp_path / "b" / "model")
    assert len(tok_b) == len(tok_a)
    assert again["first_loss"] < first["first_loss"] - 0.3, (first, again)


def test_best_on_valid_keeps_the_checkpoint_with_the_lowest_valid_loss(tiny_tasks, tmp_path):
    tasks, index = tiny_tasks
    # the full-vocabulary loss at this learning rate overfits after step 4, which gives the test a best step
    stats = train_model(_cfg(mode="full", lr=3e-2, max_steps=6, eval_steps=2, save_steps=2, eval_rows=0,
                             best_on_valid=True, code_loss="full"), tasks, index, tmp_path)
    history = json.loads((tmp_path / "loss_history.json").read_text())
    evals: dict[int, float] = {}
    for h in history:
        if "eval_loss" in h:
            evals.setdefault(h["step"], h["eval_loss"])  # the periodic one (the final evaluate() repeats the step)
    best_step = min(evals, key=evals.get)
    assert best_step < 6, evals  # at this learning rate the valid loss rises again after step 4
    assert stats["best_checkpoint"] == f"checkpoint-{best_step}"
    assert stats["best_eval_loss"] == pytest.approx(evals[best_step])
    assert stats["eval_loss"] == pytest.approx(evals[best_step], abs=1e-5)  # the saved model is that checkpoint
    saved = load_file(tmp_path / "model" / "model.safetensors")
    kept = load_file(tmp_path / "checkpoints" / f"checkpoint-{best_step}" / "model.safetensors")
    assert saved.keys() == kept.keys() and all(torch.equal(saved[k], kept[k]) for k in saved)


def test_best_on_valid_needs_a_valid_loss_at_every_checkpoint(tiny_tasks, tmp_path):
    tasks, index = tiny_tasks
    with pytest.raises(ValueError, match="eval_steps > 0"):
        train_model(_cfg(best_on_valid=True), tasks, index, tmp_path)
    with pytest.raises(ValueError, match=r"save_steps \(3\) must be a multiple of train.eval_steps \(2\)"):
        train_model(_cfg(best_on_valid=True, eval_steps=2, save_steps=3), tasks, index, tmp_path)
