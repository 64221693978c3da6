"""Item text encoders, registered by name.

An encoder turns a list of texts into a float32 array (n, dim). Each registration names the item columns it
encodes by default (encoded separately, then averaged per item) and whether its vectors are L2-normalised.
Adding an encoder is one module with a factory and one ``@register_encoder(...)`` line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lcrec.config import EmbedConfig


class TextEncoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str], progress: bool = True) -> np.ndarray: ...


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    factory: Callable[[EmbedConfig], TextEncoder]
    default_fields: tuple[str, ...]
    normalize: bool
    help: str


ENCODERS: dict[str, EncoderSpec] = {}


def register_encoder(name: str, default_fields: tuple[str, ...], normalize: bool, help: str):  # noqa: A002
    """Decorator: register ``factory(cfg) -> TextEncoder`` under ``name``."""

    def wrap(factory: Callable[[EmbedConfig], TextEncoder]):
        ENCODERS[name] = EncoderSpec(name, factory, tuple(default_fields), normalize, help)
        return factory

    return wrap


def _load_builtin() -> None:
    from lcrec.embed import causal_lm, minilm  # noqa: F401 - registration side effect


def encoder_spec(name: str) -> EncoderSpec:
    _load_builtin()
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r} (embed.encoder); available: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name]


def build_encoder(cfg: EmbedConfig) -> TextEncoder:
    return encoder_spec(cfg.encoder).factory(cfg)
