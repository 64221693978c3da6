"""The trained-model folder written by ``lcrec train`` and how to load it back (evaluate, serve).

``<train>/model/`` holds the LoRA adapter (``adapter_model.safetensors``, ``adapter_config.json``) or the full
model, the tokenizer with the code tokens, and ``lcrec_model.json``: which backbone, which mode, the code tokens
and how their rows were initialised, so a LoRA adapter is put back on exactly the base it was trained on, and
the task families it was trained on (serving picks its prompt template from them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "lcrec_model.json"


@dataclass
class ModelManifest:
    backbone: str
    mode: str
    code_tokens: list[str] = field(default_factory=list)
    code_token_noise: float = 0.0
    seed: int = 0
    families: list[str] = field(default_factory=list)  # task families of the training rows (seq, seqall, mut...)
    code_loss: str = "full"  # how code positions were scored in training: full vocabulary | level (see train.code_loss)
    code_token_init: str = "mean"  # how the code-token rows started (LoRA rebuilds the base the same way)
    user_tokens: list[str] = field(default_factory=list)  # user-code tokens (<ua_0>...), added after the code tokens

    def write(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @staticmethod
    def read(folder: Path) -> ModelManifest:
        path = Path(folder) / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"{path}: not a trained lcrec model folder (no {MANIFEST}); run `lcrec train` first")
        data = json.loads(path.read_text())
        known = set(ModelManifest.__dataclass_fields__)
        return ModelManifest(**{k: v for k, v in data.items() if k in known})

    @staticmethod
    def families_of(folder: Path) -> list[str]:
        """The training families a model folder records ([] for a manifest written before they were recorded)."""
        path = Path(folder) / MANIFEST
        return list(json.loads(path.read_text()).get("families", [])) if path.exists() else []


def load_trained(model_dir: str | Path, dtype: Any = None, merge: bool = False):
    """``(model, tokenizer)`` from a ``lcrec train`` output folder, in eval mode on the CPU.

    LoRA: the backbone is rebuilt from the registry, the code tokens are added with the same initialisation,
    and the adapter goes on top (``merge=True`` folds it into the weights). Full: loaded as an HF model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lcrec.model.code_tokens import add_code_tokens
    from lcrec.model.registry import load_backbone

    folder = Path(model_dir)
    manifest = ModelManifest.read(folder)
    dtype = dtype or torch.float32
    tok = AutoTokenizer.from_pretrained(folder)
    if manifest.mode == "full":
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        return mark_code_scoring(model, tok, manifest.code_loss).eval(), tok
    from peft import PeftModel

    base, base_tok = load_backbone(manifest.backbone, dtype=torch.float32)
    add_code_tokens(base, base_tok, manifest.code_tokens, noise_std=manifest.code_token_noise, seed=manifest.seed)
    if manifest.user_tokens:
        add_code_tokens(base, base_tok, manifest.user_tokens, noise_std=manifest.code_token_noise,
                        seed=manifest.seed + 1)
    if base_tok.get_vocab() != tok.get_vocab():
        raise ValueError(f"{folder}: the saved tokenizer differs from backbone {manifest.backbone!r} + code tokens; "
                         "the backbone changed since training; retrain or point train.backbone at the original")
    model = PeftModel.from_pretrained(base, folder)
    if merge:
        model = model.merge_and_unload()
    return mark_code_scoring(model, tok, manifest.code_loss).to(dtype).eval(), tok


def mark_code_scoring(model: Any, tok: Any, code_loss: str) -> Any:
    """Record on the model's config how decoding must normalise a code step: ``code_score_norm`` "level" (over
    that level's tokens, ``code_level_ids``, as a model trained with train.code_loss=level was scored) or
    "full" (the whole vocabulary)."""
    from lcrec.model.code_tokens import level_token_ids

    config = model.config
    config.code_score_norm = code_loss
    config.code_level_ids = level_token_ids(tok) if code_loss == "level" else None
    return model
