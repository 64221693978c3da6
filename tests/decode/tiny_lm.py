"""A tiny BPE tokenizer with LC-Rec code tokens, a tiny random Llama and random indices, built offline."""

from __future__ import annotations

import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LEVELS = 3
CODEBOOK = 6
CORPUS = [
    "the user watched a movie about space and then a comedy",
    "recommend the next item for this user given the history",
    "toy story, the matrix, star wars, casablanca, fargo",
    "a quiet drama with a long history of awards",
]


def code_token(level: int, k: int) -> str:
    return f"<{chr(ord('a') + level)}_{k}>"


PROMPT_TEXTS = [
    "the user watched toy story",
    "recommend the next item",
    "a quiet drama",
    "star wars, fargo, casablanca and the matrix then a comedy about space",
    "history",
]


def random_index(n_items: int, levels: int = LEVELS, codebook: int = CODEBOOK, seed: int = 0) -> dict:
    """LC-Rec style index with unique random codes."""
    rng = random.Random(seed)
    seen, index = set(), {}
    while len(index) < n_items:
        code = tuple(rng.randrange(codebook) for _ in range(levels))
        if code in seen:
            continue
        seen.add(code)
        index[str(len(index))] = [code_token(lvl, k) for lvl, k in enumerate(code)]
    return index


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    hf.add_tokens([code_token(lvl, k) for lvl in range(LEVELS) for k in range(CODEBOOK)])
    return hf


def build_model(tokenizer, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        initializer_range=0.3,  # peaky distributions: no near-ties between items
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(cfg).eval()
