"""Teach a tokenizer and its model the item-code tokens (``<a_0>`` ... ``<d_255>``).

The tokens come from ``index.json``, sorted by level letter then by code number (``<a_0>, <a_1>, ..., <a_10>``,
not Python's string order ``<a_0>, <a_1>, <a_10>``), and are added as ordinary added tokens, so the tokenizer
never splits them. The embedding matrix grows to fit (or not at all when the model's vocabulary is already
padded beyond the tokenizer, as with Qwen); each new row starts at the **mean of the existing rows** plus
optional Gaussian noise of ``noise_std`` times the rows' per-dimension standard deviation. The mean keeps the
new tokens' logits at the average logit level, so the first steps neither over- nor under-predict them; the
noise (off by default) breaks the symmetry between the new rows. Input and output embeddings are initialised
separately when they are not tied; SmolLM2 ties them, so one write covers both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lcrec.quantize.index_file import (  # the one code-token pattern
    CODE_TOKEN,
    USER_PREFIX,
    split_code_string,
    token_pattern,
)


def _order(token: str) -> tuple[str, int]:
    m = CODE_TOKEN.fullmatch(token)
    if m is None:
        raise ValueError(f"{token!r} is not an item-code token like <a_12>")
    return m.group(1), int(m.group(2))


def sort_code_tokens(tokens: Iterable[str]) -> list[str]:
    """Unique code tokens ordered by level letter, then code number."""
    return sorted(set(tokens), key=_order)


def code_tokens_from_index(index: Mapping[str, Any] | str | Path) -> list[str]:
    """Every code token used in an index (``{item_id: ["<a_1>", "<b_2>", ...]}`` or a path to index.json)."""
    if not isinstance(index, Mapping):
        path = Path(index)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no index file; run `lcrec quantize` (or `dvc repro quantize`) first")
        index = json.loads(path.read_text())
    tokens: set[str] = set()
    for item, codes in index.items():
        if isinstance(codes, str):  # "<a_1><b_2>..." as one string
            codes = [f"<{a}_{b}>" for a, b in CODE_TOKEN.findall(codes)]
        if not codes:
            raise ValueError(f"index entry for item {item!r} has no codes; expected a list like ['<a_1>', '<b_2>']")
        for c in codes:
            _order(c)
            tokens.add(c)
    return sort_code_tokens(tokens)


def codebook_tokens(num_levels: int, codebook_size: int, prefix: str = "") -> list[str]:
    """Every token of a ``num_levels`` x ``codebook_size`` codebook grid, in level then code order (``prefix``
    "u": the user-code grid ``<ua_0>`` ...)."""
    from lcrec.quantize.index_file import code_token

    return [code_token(level, code, prefix) for level in range(num_levels) for code in range(codebook_size)]


def training_user_tokens(user_codes: dict[str, Any]) -> list[str]:
    """The user-code tokens a model is trained with (the tasks step's ``user_codes.json``): the whole user
    codebook grid, so users added later by ``lcrec user-add`` can be named; [] when the rows use no user code."""
    if not user_codes.get("codes"):
        return []
    levels, size = int(user_codes.get("num_levels") or 0), int(user_codes.get("codebook_size") or 0)
    prefix = user_codes.get("token_prefix", USER_PREFIX)
    used = {t for code in user_codes["codes"].values() for t in split_code_string(code)}
    grid = set(codebook_tokens(levels, size, prefix)) if levels and size else set()
    pattern = token_pattern(prefix)

    def order(token: str) -> tuple[str, int]:
        m = pattern.fullmatch(token)
        if m is None:
            raise ValueError(f"{token!r} in user_codes.json is not a user-code token like <{prefix}a_12>")
        return m.group(1), int(m.group(2))

    return sorted(grid | used, key=order)


def training_code_tokens(index_path: str | Path) -> list[str]:
    """The code tokens a model is trained with: the whole codebook grid when ``index_meta.json`` beside the
    index names it, so items the live re-index adds later (whose codes may use a code no current item uses)
    can still be written; otherwise the tokens the index uses."""
    index_path = Path(index_path)
    used = code_tokens_from_index(index_path)
    meta_path = index_path.with_name("index_meta.json")
    if not meta_path.exists():
        return used
    meta = json.loads(meta_path.read_text())
    levels, size = meta.get("num_levels"), meta.get("codebook_size")
    if not levels or not size:
        return used
    grid = codebook_tokens(int(levels), int(size))
    return sort_code_tokens(set(grid) | set(used))


def _init_rows(weight, new_ids: list[int], n_old: int, noise_std: float, generator) -> None:
    import torch

    with torch.no_grad():
        old = weight[:n_old].float()
        mean = old.mean(dim=0)
        rows = mean.expand(len(new_ids), -1).clone()
        if noise_std > 0:
            std = old.std(dim=0)
            rows += torch.randn(rows.shape, generator=generator) * std * noise_std
        weight[torch.as_tensor(new_ids, dtype=torch.long)] = rows.to(weight.dtype)


def add_code_tokens(model, tokenizer, tokens: Iterable[str], noise_std: float = 0.0, seed: int = 0) -> list[int]:
    """Add ``tokens`` (those the tokenizer lacks) and initialise their embedding rows; return the ids of *all*
    ``tokens`` in the given order (new or already present)."""
    import torch

    tokens = list(tokens)
    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        n_old_tok = len(tokenizer)
        tokenizer.add_tokens(missing)
        new_ids = tokenizer.convert_tokens_to_ids(missing)
        emb_in = model.get_input_embeddings()
        n_rows = emb_in.weight.shape[0]
        n_old = min(n_old_tok, n_rows)  # rows of real tokens; padded rows beyond the tokenizer are not averaged
        if len(tokenizer) > n_rows:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        gen = torch.Generator().manual_seed(seed)
        _init_rows(model.get_input_embeddings().weight, new_ids, n_old, noise_std, gen)
        out = model.get_output_embeddings()
        if out is not None and out.weight.data_ptr() != model.get_input_embeddings().weight.data_ptr():
            _init_rows(out.weight, new_ids, n_old, noise_std, gen)
            if getattr(out, "bias", None) is not None:
                with torch.no_grad():
                    out.bias[new_ids] = out.bias[:n_old].mean()
    return tokenizer.convert_tokens_to_ids(tokens)


def level_token_ids(tokenizer) -> list[list[int]]:
    """The code tokens a tokenizer knows, as token ids grouped by level (``<a_*>`` first), each level in code
    order: the sets a code-restricted softmax normalises over (training loss and decoding agree on them)."""
    levels: dict[str, list[tuple[int, int]]] = {}
    for token, tid in tokenizer.get_vocab().items():
        m = CODE_TOKEN.fullmatch(token)
        if m is not None:
            levels.setdefault(m.group(1), []).append((int(m.group(2)), tid))
    return [[tid for _, tid in sorted(levels[letter])] for letter in sorted(levels)]


CODE_TOKEN_INITS = ("mean", "codebook")


def init_rows_from_codebook(model, tokenizer, tokens: Iterable[str], quantizer_path: str | Path, seed: int = 0) -> int:
    """Overwrite the rows of code ``tokens`` with the quantizer's codebook vectors: per level standardised, mapped
    to the model width by a seeded Gaussian projection, then given the existing rows' mean and per-dimension
    spread. Codes the quantizer places close together start close in the model. Returns the rows written."""
    import torch

    path = Path(quantizer_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: train.code_token_init=codebook needs the quantizer beside index.json; "
                                "run `lcrec quantize` or use train.code_token_init=mean")
    books = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]["codebooks"].float()  # [L, K, d]
    levels, size, dim = books.shape
    books = (books - books.mean(dim=1, keepdim=True)) / books.std(dim=1, keepdim=True).clamp(min=1e-8)
    vocab = tokenizer.get_vocab()
    weights = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != weights[0].data_ptr():
        weights.append(out.weight)
    code_ids = set(tokenizer.convert_tokens_to_ids([t for t in tokens if t in vocab]))
    written = 0
    gen = torch.Generator().manual_seed(seed)
    proj = torch.randn(dim, weights[0].shape[1], generator=gen) / dim ** 0.5
    with torch.no_grad():
        for weight in weights:
            n_rows = weight.shape[0]
            old = weight[[i for i in range(min(len(tokenizer), n_rows)) if i not in code_ids]].float()
            mean, std = old.mean(dim=0), old.std(dim=0)
            written = 0
            for token in tokens:
                letter, code = _order(token)
                level = ord(letter) - ord("a")
                if level >= levels or code >= size or token not in vocab:
                    continue
                weight[vocab[token]] = (mean + (books[level, code] @ proj) * std).to(weight.dtype)
                written += 1
    return written
