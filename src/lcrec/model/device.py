"""Pick the torch device for a step: ``auto`` means CUDA when present, else CPU."""

from __future__ import annotations


def resolve_device(name: str = "auto") -> str:
    """``auto``/empty -> cuda if available else cpu; an explicit cuda without a GPU is an error."""
    import torch

    if name in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but torch sees no CUDA GPU; use device=cpu or auto")
    return name
