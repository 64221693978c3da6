"""The paper's encoder: mean-pooled last hidden states of a causal LM (LC-Rec used LLaMA-7B; the bundled
default here is SmolLM2-135M-Instruct, 576-d). Title and description are encoded separately and averaged
per item, as LC-Rec's ``amazon_text_emb.py`` does; vectors are not normalised."""

from __future__ import annotations

from lcrec.config import EmbedConfig
from lcrec.embed.mean_pool import MeanPoolEncoder
from lcrec.embed.registry import register_encoder


@register_encoder(
    "causal-lm", default_fields=("title", "description"), normalize=False,
    help="mean-pooled last hidden state of a causal LM (bundled SmolLM2-135M or embed.model_path)",
)
def build_causal_lm(cfg: EmbedConfig) -> MeanPoolEncoder:
    from lcrec.model.backbones import load_causal_lm
    from lcrec.model.device import resolve_device, resolve_dtype

    device = resolve_device(cfg.device)
    model, tok = load_causal_lm(cfg.model_path, resolve_dtype(cfg.dtype, device, "embed.dtype"), device,
                                cfg.cache_dir or None)
    name = "causal-lm:" + (cfg.model_path or "smollm2")
    return MeanPoolEncoder(name, model.base_model, tok, device, cfg.batch_size, cfg.max_length)
