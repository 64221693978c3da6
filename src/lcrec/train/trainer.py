"""The HF Trainer set-up: backbone + code tokens, LoRA or full fine-tuning, response-only loss, per-family logs.

Loss. Only response tokens (and EOS) are targets. The model is asked for logits only at the positions that
predict a target (``logits_to_keep`` = those positions), so the 50k-wide output projection and the
cross-entropy run on the ~5-10% of tokens that are responses instead of on every prompt token: this is the
"chunked loss over the vocabulary", taken to its limit. Token losses are summed and divided by the number of
target tokens in the whole accumulation window (Trainer's ``num_items_in_batch``), so gradient accumulation
and packing give the same loss as one big batch.

Modes. ``lora``: peft ``LoraConfig(target_modules=..., trainable_token_indices=...)`` where the indices are the
code tokens: only the LoRA matrices and those embedding rows train (peft keeps a small delta for the rows and
ties it to ``lm_head`` when the embeddings are tied, as in SmolLM2); no full copies of embed/lm_head.
``full``: every weight trains.

Per-family loss. ``compute_loss`` adds each target token's loss to its task family's running sum; every
``logging_steps`` the mean per family is logged next to the overall loss (``loss_seq``, ``loss_mut`` ...).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lcrec.config import TrainConfig

log = logging.getLogger(__name__)

MODES = ("lora", "full")


def use_bf16(cfg: TrainConfig) -> bool:
    import torch

    from lcrec.model.device import resolve_bf16

    try:
        return resolve_bf16(cfg.bf16, "cuda" if torch.cuda.is_available() else "cpu")
    except ValueError:
        raise ValueError(f"train.bf16={cfg.bf16!r}: use auto, true or false") from None


def build_model(cfg: TrainConfig, code_tokens: list[str], index_path: Path | None = None,
                user_tokens: list[str] = ()):
    """(model, tokenizer, code_token_ids): the backbone with the code tokens added (rows initialised as
    ``train.code_token_init`` says; ``codebook`` reads ``quantizer.pt`` beside ``index_path``), LoRA or full.
    ``user_tokens`` (user-code tokens) are added after them and start at the mean row; their ids are included."""
    import torch

    from lcrec.model.code_tokens import CODE_TOKEN_INITS, add_code_tokens, init_rows_from_codebook
    from lcrec.model.dropout import add_residual_dropout
    from lcrec.model.registry import load_backbone

    if cfg.mode not in MODES:
        raise ValueError(f"train.mode={cfg.mode!r}: use one of {', '.join(MODES)}")
    if cfg.code_token_init not in CODE_TOKEN_INITS:
        raise ValueError(f"train.code_token_init={cfg.code_token_init!r}: use one of {', '.join(CODE_TOKEN_INITS)}")
    if cfg.code_token_init == "codebook" and index_path is None:
        raise ValueError("train.code_token_init=codebook needs the index folder (quantizer.pt)")
    model, tok = load_backbone(cfg.backbone, dtype=torch.float32)
    if cfg.attn_implementation and hasattr(model, "set_attn_implementation"):
        try:
            model.set_attn_implementation(cfg.attn_implementation)
        except (ValueError, ImportError) as err:
            raise ValueError(f"train.attn_implementation={cfg.attn_implementation!r} is not usable here: {err}") from None
    ids = add_code_tokens(model, tok, code_tokens, noise_std=cfg.code_token_noise, seed=cfg.seed)
    if cfg.code_token_init == "codebook":
        init_rows_from_codebook(model, tok, code_tokens, Path(index_path).with_name("quantizer.pt"), seed=cfg.seed)
    if user_tokens:
        ids = ids + add_code_tokens(model, tok, list(user_tokens), noise_std=cfg.code_token_noise, seed=cfg.seed + 1)
    model.config.use_cache = False
    add_residual_dropout(model, cfg.dropout, cfg.attention_dropout)
    if cfg.mode == "lora":
        model = apply_lora(model, cfg, ids)
    return model, tok, ids


def embeddings_tied(model) -> bool:
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


def apply_lora(model, cfg: TrainConfig, code_ids: list[int]):
    from peft import LoraConfig, TaskType, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in cfg.lora_targets if t not in names]
    if missing:
        raise ValueError(f"train.lora_targets: {', '.join(missing)} not found in backbone {cfg.backbone}; "
                         f"its linear layers include {', '.join(sorted(n for n in names if n.endswith('proj')))}")
    token_indices: Any = None
    if cfg.train_code_tokens and code_ids:
        if embeddings_tied(model):
            token_indices = list(code_ids)  # the input embedding; peft ties lm_head to the same delta
        else:
            emb = next(n for n, m in model.named_modules() if m is model.get_input_embeddings()).rsplit(".", 1)[-1]
            head = next(n for n, m in model.named_modules() if m is model.get_output_embeddings()).rsplit(".", 1)[-1]
            token_indices = {emb: list(code_ids), head: list(code_ids)}
    lora = LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_targets), trainable_token_indices=token_indices,
    )
    peft_model = get_peft_model(model, lora)
    # peft would store the whole resized embedding matrix in every adapter ("save_embedding_layers=auto"), ~115 MB
    # for SmolLM2; the code-token rows are already in the adapter and the rest is rebuilt exactly from the
    # backbone by lcrec.model.trained.load_trained, so adapters and checkpoints stay small.
    peft_model.save_pretrained = functools.partial(peft_model.save_pretrained, save_embedding_layers=False)
    return peft_model


def response_loss(model, inputs: dict[str, Any], levels: Any = None):
    """(sum of target-token losses, their count, per-token losses, per-token family ids); logits are computed
    only at the positions whose next token is a target (a boolean ``logits_to_keep`` mask). With ``levels`` (a
    :class:`lcrec.train.code_loss.LevelTable`), code targets are scored against their level's tokens only."""
    import torch
    import torch.nn.functional as F

    from lcrec.train.code_loss import restricted_token_losses

    batch = dict(inputs)
    labels = batch.pop("labels")
    tasks = batch.pop("task_ids", None)
    predicts = torch.zeros_like(labels, dtype=torch.bool)
    predicts[:, :-1] = labels[:, 1:] != -100
    y = labels[:, 1:][predicts[:, :-1]]
    if y.numel() == 0:  # a batch without targets still joins the graph
        out = model(**batch, logits_to_keep=1, use_cache=False)
        zero = out.logits.sum() * 0.0
        return zero, torch.zeros((), device=zero.device), zero.reshape(1)[:0], None
    if levels is not None:
        token_loss = restricted_token_losses(model, batch, predicts, y, levels)
    else:
        out = model(**batch, logits_to_keep=predicts, use_cache=False)
        logits = out.logits.reshape(-1, out.logits.shape[-1])
        token_loss = F.cross_entropy(logits.float(), y, reduction="none")
    fam = tasks[:, 1:][predicts[:, :-1]] if tasks is not None else None
    return token_loss.sum(), torch.tensor(y.numel(), device=token_loss.device), token_loss, fam


def make_trainer_class():
    """The Trainer subclass (built lazily so that importing this module stays light)."""
    import torch
    from transformers import Trainer

    class LcrecTrainer(Trainer):
        def __init__(self, *args, families: list[str] = (), levels: Any = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.families = list(families)
            self.levels = levels  # LevelTable for train.code_loss=level, else None (full softmax)
            self.model_accepts_loss_kwargs = True  # our loss is already normalised by num_items_in_batch
            self._fam_sum = None
            self._fam_n = None
            self.tokens_seen = 0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss_sum, n, token_loss, fam = response_loss(model, inputs, self.levels)
            if model.training:
                mask = inputs.get("attention_mask")
                self.tokens_seen += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
                if fam is not None and self.families:
                    k = len(self.families)
                    valid = fam >= 0
                    sums = torch.bincount(fam[valid], weights=token_loss.detach()[valid].float(), minlength=k)[:k]
                    cnt = torch.bincount(fam[valid], minlength=k)[:k].float()
                    self._fam_sum = sums if self._fam_sum is None else self._fam_sum + sums
                    self._fam_n = cnt if self._fam_n is None else self._fam_n + cnt
            if num_items_in_batch is not None:
                loss = loss_sum / num_items_in_batch
                if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
                    loss = loss * self.accelerator.num_processes  # DDP averages gradients over ranks
            else:
                loss = loss_sum / n.clamp(min=1)
            return (loss, {}) if return_outputs else loss

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            if "loss" in logs and self._fam_n is not None:
                sums, cnt = self._fam_sum, self._fam_n
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    both = torch.cat([sums, cnt]).to(self.args.device)
                    torch.distributed.all_reduce(both)
                    sums, cnt = both[: len(sums)], both[len(sums):]
                for name, s, c in zip(self.families, sums.tolist(), cnt.tolist(), strict=True):
                    if c > 0:
                        logs[f"loss_{name}"] = round(s / c, 6)
                self._fam_sum = self._fam_n = None
            super().log(logs, start_time)

    return LcrecTrainer


def version_kwargs(arguments_class: Any, cfg: TrainConfig) -> dict[str, Any]:
    """The knobs whose names changed across transformers 5.x: ``activation_checkpointing`` and a float
    ``warmup_steps`` (a ratio) in newer releases, ``gradient_checkpointing`` and ``warmup_ratio`` before."""
    import inspect

    names = inspect.signature(arguments_class.__init__).parameters
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    warmup = ({"warmup_ratio": float(cfg.warmup_ratio)} if "warmup_ratio" in names and "activation_checkpointing"
              not in names else {"warmup_steps": float(cfg.warmup_ratio)})  # a float < 1: a ratio of the steps
    return {checkpointing: cfg.gradient_checkpointing, **warmup}


def training_arguments(cfg: TrainConfig, checkpoint_dir: Path, has_eval: bool):
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    optim = cfg.optim if cfg.optim not in ("", "auto") else ("adamw_torch_fused" if cuda else "adamw_torch")
    eval_kwargs: dict[str, Any] = {"eval_strategy": "no"}
    if has_eval and cfg.eval_steps > 0:
        eval_kwargs = {"eval_strategy": "steps", "eval_steps": cfg.eval_steps}
    if cfg.best_on_valid:
        if not has_eval or cfg.eval_steps <= 0:
            raise ValueError("train.best_on_valid needs a valid loss during training: set train.eval_steps > 0 and "
                             "keep valid.jsonl in the tasks folder (lcrec tasks writes it)")
        if cfg.save_steps % cfg.eval_steps:
            raise ValueError(f"train.best_on_valid: train.save_steps ({cfg.save_steps}) must be a multiple of "
                             f"train.eval_steps ({cfg.eval_steps}), so every checkpoint has a valid loss")
        eval_kwargs.update(load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False)
    return TrainingArguments(
        **version_kwargs(TrainingArguments, cfg),
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type="cosine",
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=use_bf16(cfg),
        optim=optim,
        deepspeed=cfg.deepspeed or None,
        torch_compile=cfg.compile,
        use_cpu=not cuda,
        report_to="none",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=cfg.dataloader_workers,
        disable_tqdm=False,
        save_only_model=False,
        **eval_kwargs,
    )


def make_log_callback(on_log: Callable[[int, dict[str, float]], None]):
    from transformers import TrainerCallback

    class _OnLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                on_log(state.global_step, {k: float(v) for k, v in logs.items() if isinstance(v, int | float)})

    return _OnLog()


def make_time_limit_callback(max_minutes: float):
    """A callback that ends training after the step that crosses ``max_minutes`` (counted from the first step,
    so model loading and a resumed run's earlier steps do not count)."""
    import time

    from transformers import TrainerCallback

    class _TimeLimit(TrainerCallback):
        def __init__(self) -> None:
            self.started: float | None = None
            self.stopped_at: int | None = None

        def on_step_begin(self, args, state, control, **kwargs):
            if self.started is None:
                self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if self.started is not None and time.perf_counter() - self.started >= max_minutes * 60:
                control.should_training_stop = True
                self.stopped_at = state.global_step

    return _TimeLimit()


def single_process_dist_env() -> None:
    """DeepSpeed needs torch.distributed even in one process: fill the env a launcher would set."""
    if "WORLD_SIZE" in os.environ:
        return
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
