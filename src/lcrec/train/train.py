"""``lcrec train``: alignment tuning of the backbone on the instruction tasks.

:func:`train_model` is the pure step (files in, files out); :func:`run_train` resolves the work folders, logs the
run to MLflow as it trains (parameters, loss curves overall and per task family, final metrics, artifacts) and
returns the statistics.

Outputs in ``work/train/``: ``model/`` (LoRA adapter or full model + tokenizer + ``lcrec_model.json``; load it
with :func:`lcrec.model.trained.load_trained`), ``checkpoints/checkpoint-<step>/`` (resumable with ``--resume``),
``train_metrics.json``, ``loss_history.json``, ``plots/loss_<family>.png`` (+ ``plots/loss.png``) and the same
series as ``loss_train.csv`` / ``loss_valid.csv`` for ``dvc plots diff``.

Several GPUs: ``torchrun --nproc_per_node=8 -m lcrec.cli train --set train.deepspeed=configs/deepspeed/ds_zero2.json``
(or the ``deepspeed`` launcher); every rank runs the same command, rank 0 writes files and MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lcrec.config import Params, TrainConfig
from lcrec.tracking.series import write_series

log = logging.getLogger(__name__)


def _is_rank0() -> bool:
    return os.environ.get("RANK", "0") == "0"


def plot_losses(history: list[dict[str, Any]], families: list[str], out_dir: Path) -> list[Path]:
    """One PNG per task family (training loss per logging window) and one with the overall + eval loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    series = [("loss", "loss")] + [(f"loss_{f}", f) for f in families]
    for key, name in series:
        points = [(h["step"], h[key]) for h in history if key in h]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(*zip(*points, strict=True), marker="o", ms=3, label=f"train {name}")
        if key == "loss":
            ev = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
            if ev:
                ax.plot(*zip(*ev, strict=True), marker="s", ms=4, label="valid (next item)")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("cross-entropy on response tokens")
        ax.set_title(f"training loss: {name}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / ("loss.png" if key == "loss" else f"loss_{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def train_model(cfg: TrainConfig, tasks_dir: Path, index_path: Path, out_dir: Path, resume: bool = False,
                on_log: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train the backbone on ``tasks_dir/train.{parquet,jsonl}`` with the codes of ``index_path``; write the
    model, metrics and plots to ``out_dir``. ``resume`` continues from the latest checkpoint in
    ``out_dir/checkpoints`` (same data order, optimizer, schedule and RNG state); ``on_log(step, logs)`` sees
    every log line (loss, loss_<family>, learning_rate, grad_norm, eval_loss)."""
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from lcrec.model.code_tokens import level_token_ids, training_code_tokens, training_user_tokens
    from lcrec.model.trained import ModelManifest
    from lcrec.tasks.registry import family_of
    from lcrec.tasks.tasks import USER_CODES, read_user_codes_file
    from lcrec.train.code_loss import LevelTable, check_code_loss
    from lcrec.train.collator import (
        InstructionDataset,
        PackedCollator,
        PaddedCollator,
        find_task_file,
        read_rows,
        truncation_report,
    )
    from lcrec.train.trainer import (
        build_model,
        make_log_callback,
        make_time_limit_callback,
        make_trainer_class,
        single_process_dist_env,
        training_arguments,
        use_bf16,
    )

    tasks_dir, out_dir = Path(tasks_dir), Path(out_dir)
    train_path = find_task_file(tasks_dir, "train")
    if train_path is None:
        raise FileNotFoundError(f"{tasks_dir}: no train.parquet or train.jsonl; run `lcrec tasks` first")
    if cfg.deepspeed:
        if not Path(cfg.deepspeed).exists():
            raise FileNotFoundError(f"train.deepspeed={cfg.deepspeed}: no such DeepSpeed config; the repo ships "
                                    "configs/deepspeed/ds_zero2.json and ds_zero3.json")
        single_process_dist_env()
    set_seed(cfg.seed)
    code_tokens = training_code_tokens(index_path)
    user_codes = read_user_codes_file(tasks_dir / USER_CODES)
    user_tokens = training_user_tokens(user_codes)
    rows = read_rows(train_path)
    if not rows:
        raise ValueError(f"{train_path} holds no rows; check tasks.families and the split")
    families = sorted({family_of(r["task"]) for r in rows})
    model, tok, code_ids = build_model(cfg, code_tokens, index_path, user_tokens)
    levels = None
    if check_code_loss(cfg.code_loss) == "level":
        levels = LevelTable(level_token_ids(tok), len(tok))
    for family, cut in truncation_report(rows, tok, cfg.max_len, seed=cfg.seed).items():
        log.warning("train: %d sampled %s rows are longer than train.max_len=%d tokens (longest %d): their prompts "
                    "lose their start in training but not at inference; raise train.max_len to at least %d",
                    cut["rows"], family, cfg.max_len, cut["longest"], cut["longest"])
    train_ds = InstructionDataset(rows, tok, cfg.max_len, families)
    eval_ds = None
    valid_path = find_task_file(tasks_dir, "valid")
    if valid_path is not None:
        vrows = read_rows(valid_path)
        if cfg.eval_rows and len(vrows) > cfg.eval_rows:
            vrows = random.Random(cfg.seed).sample(vrows, cfg.eval_rows)
        eval_ds = InstructionDataset(vrows, tok, cfg.max_len, families) if vrows else None
    collator = PackedCollator(cfg.max_len, tok.pad_token_id) if cfg.packing else PaddedCollator(tok.pad_token_id)

    ckpt_dir = out_dir / "checkpoints"
    last = None
    if resume:
        last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.exists() else None
        if last is None:
            raise FileNotFoundError(f"--resume: no checkpoint-<step> folder in {ckpt_dir}; run without --resume")
        log.info("resuming from %s", last)
    elif ckpt_dir.exists() and _is_rank0():
        log.info("starting afresh: removing old checkpoints in %s (use --resume to continue them)", ckpt_dir)
        shutil.rmtree(ckpt_dir)

    args = training_arguments(cfg, ckpt_dir, eval_ds is not None)
    if cfg.max_minutes < 0:
        raise ValueError(f"train.max_minutes={cfg.max_minutes} must be >= 0 (0 = no time limit)")
    callbacks = [make_log_callback(on_log)] if on_log else []
    time_limit = make_time_limit_callback(cfg.max_minutes) if cfg.max_minutes > 0 else None
    if time_limit is not None:
        callbacks.append(time_limit)
    trainer = make_trainer_class()(
        model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collator,
        processing_class=tok, callbacks=callbacks, families=families, levels=levels,
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("training %s (%s): %s of %s parameters trainable, %d rows, families %s", cfg.backbone, cfg.mode,
             f"{trainable:,}", f"{total:,}", len(rows), ",".join(families))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    wall = time.perf_counter() - started
    eval_loss = None
    if eval_ds is not None:
        eval_loss = trainer.evaluate().get("eval_loss")

    history = [h for h in trainer.state.log_history if "step" in h]
    model_dir = out_dir / "model"
    stats: dict[str, Any] = {
        "backbone": cfg.backbone, "mode": cfg.mode, "code_loss": cfg.code_loss, "bf16": use_bf16(cfg), "train_file": str(train_path), "train_rows": len(rows),
        "families": families, "code_tokens": len(code_tokens), "user_tokens": len(user_tokens), "code_token_ids": [min(code_ids), max(code_ids)],
        "trainable_params": trainable, "total_params": total, "steps": trainer.state.global_step,
        "resumed_from": last or "", "train_runtime_s": round(wall, 2),
        "stopped_by": "time" if time_limit is not None and time_limit.stopped_at is not None else "steps",
        "train_loss": float(result.training_loss), "tokens_seen": trainer.tokens_seen,
        "tokens_per_s": round(trainer.tokens_seen / wall, 1) if wall > 0 else 0.0,
        "model_dir": str(model_dir),
    }
    losses = [h for h in history if "loss" in h]
    if losses:
        stats["first_loss"], stats["final_loss"] = losses[0]["loss"], losses[-1]["loss"]
    for f in families:
        pts = [h[f"loss_{f}"] for h in history if f"loss_{f}" in h]
        if pts:
            stats[f"first_loss_{f}"], stats[f"final_loss_{f}"] = pts[0], pts[-1]
    if eval_loss is not None:
        stats["eval_loss"] = float(eval_loss)
    if cfg.best_on_valid and trainer.state.best_model_checkpoint:
        stats["best_checkpoint"] = Path(trainer.state.best_model_checkpoint).name
        stats["best_eval_loss"] = float(trainer.state.best_metric)

    trainer.save_model(str(model_dir))
    if trainer.is_world_process_zero():
        tok.save_pretrained(model_dir)
        ModelManifest(cfg.backbone, cfg.mode, code_tokens, cfg.code_token_noise, cfg.seed, families,
                      code_loss=cfg.code_loss, code_token_init=cfg.code_token_init,
                      user_tokens=user_tokens).write(model_dir)
        if user_tokens:  # the user codes travel with the model: serving names a user as training did
            (model_dir / USER_CODES).write_text(json.dumps(user_codes))
        (out_dir / "loss_history.json").write_text(json.dumps(history, indent=1))
        stats["plots"] = [str(p) for p in plot_losses(history, families, out_dir / "plots")]
        write_series(history, "step", ["loss", *(f"loss_{f}" for f in families)], out_dir / "loss_train.csv")
        write_series(history, "step", ["eval_loss"], out_dir / "loss_valid.csv")
        (out_dir / "train_metrics.json").write_text(json.dumps(stats, indent=2))
    return stats


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def run_train(params: Params, resume: bool = False) -> dict[str, Any]:
    """``lcrec train``: work/tasks + work/index/index.json -> work/train; the MLflow run shows the loss curves
    live (overall and per task family), the parameters, final metrics, plots and (LoRA) the adapter."""
    from lcrec.tracking import log_step

    cfg = params.train
    tasks_dir = params.paths.step("tasks")
    index_path = params.paths.step("index") / "index.json"
    out_dir = params.paths.step("train")
    track = params.tracking.enabled and _is_rank0()
    run_id = client = None
    on_log = None
    if track:
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        run_id = log_step("train", params.tracking, params.paths, params=cfg, tags={"lcrec.resume": str(resume)})
        client = MlflowClient()
        client.update_run(run_id, status="RUNNING")

        def on_log(step: int, logs: dict[str, float]) -> None:
            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in logs.items() if k != "epoch"])

    try:
        stats = train_model(cfg, tasks_dir, index_path, out_dir, resume=resume, on_log=on_log)
    except BaseException:
        if client is not None:
            client.set_terminated(run_id, status="FAILED")
        raise
    if client is not None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        numeric = {k: float(v) for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        client.log_batch(run_id, metrics=[Metric(f"final.{k}", v, now, stats["steps"]) for k, v in numeric.items()])
        for name in ("train_metrics.json", "loss_history.json"):
            if (out_dir / name).exists():
                client.log_artifact(run_id, str(out_dir / name))
        if (out_dir / "plots").exists():
            client.log_artifacts(run_id, str(out_dir / "plots"), artifact_path="plots")
        model_dir = out_dir / "model"
        if model_dir.exists() and _dir_size(model_dir) < 200 * 2**20:  # adapters; full models stay in DVC
            client.log_artifacts(run_id, str(model_dir), artifact_path="model")
        client.set_terminated(run_id, status="FINISHED")
        stats["mlflow_run_id"] = run_id
    return stats
