"""Item text encoders, registered by name.

Two kinds of encoder:

- ``text``: ``encode(texts) -> (n, dim)`` float32. Each registration names the item columns it encodes by default
  (encoded separately, then averaged per item) and whether its vectors are L2-normalised.
- ``interactions``: learns item vectors from the training sequences. ``fit(items, split_dir)`` returns the
  catalogue's vectors and the meta needed later; ``embed_new(items, meta)`` gives vectors for items it never saw
  (the live re-index), from that meta alone.

Adding an encoder is one module with a factory and one ``@register_encoder(...)`` line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lcrec.config import EmbedConfig, SasrecConfig

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import pandas as pd


class TextEncoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str], progress: bool = True) -> np.ndarray: ...


class InteractionEncoder(Protocol):
    name: str

    def fit(self, items: pd.DataFrame, split_dir: Path, progress: bool = True,
            save_dir: Path | None = None) -> tuple[np.ndarray, dict[str, Any]]: ...

    def embed_new(self, items: pd.DataFrame, meta: dict[str, Any], progress: bool = True) -> np.ndarray: ...


KINDS = ("text", "interactions")


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    factory: Callable[..., Any]  # (cfg) -> TextEncoder (kind "text"); (cfg, sasrec) -> InteractionEncoder
    default_fields: tuple[str, ...]
    normalize: bool
    help: str
    kind: str = "text"


ENCODERS: dict[str, EncoderSpec] = {}


def register_encoder(name: str, default_fields: tuple[str, ...], normalize: bool, help: str,  # noqa: A002
                     kind: str = "text"):
    """Decorator: register ``factory(cfg) -> encoder`` under ``name`` (``kind``: text | interactions; an
    interactions factory takes ``(cfg, sasrec)``)."""
    if kind not in KINDS:
        raise ValueError(f"encoder {name!r}: kind must be one of {KINDS}, got {kind!r}")

    def wrap(factory: Callable[..., Any]):
        ENCODERS[name] = EncoderSpec(name, factory, tuple(default_fields), normalize, help, kind)
        return factory

    return wrap


def _load_builtin() -> None:
    from lcrec.embed import causal_lm, collaborative, minilm  # noqa: F401 - registration side effect


def encoder_spec(name: str) -> EncoderSpec:
    _load_builtin()
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r} (embed.encoder); available: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name]


def build_encoder(cfg: EmbedConfig, sasrec: SasrecConfig | None = None) -> TextEncoder:
    """The encoder ``embed.encoder`` names. An ``interactions`` encoder's factory also gets the behaviour model's
    recipe (the top-level ``sasrec`` section; its defaults when None)."""
    spec = encoder_spec(cfg.encoder)
    return spec.factory(cfg, sasrec) if spec.kind == "interactions" else spec.factory(cfg)
