"""The serving core: load the served model and its index state, turn histories into prompts, rank them (by
trie-constrained beam search, or in the rank mode by re-ordering the retriever's candidates, :func:`rank_by_letters`).

Three drivers rank through it and nothing else: the predictor (which keeps the protocol, the decode batcher and
the index watcher), the top-K batch job (:mod:`lcrec.serve.cache`, which keeps the cache rows) and the evaluate
step (which ranks the test prompts the tasks step wrote). The rules that must agree between them live here once:

- the prompt shows the last ``max_history`` history items the index knows (:func:`history_prompt`), and the cache
  key is the hash of exactly that shown part;
- a search that will drop items (history or request exclusions) is widened by how many of them the index holds,
  so ``k`` items are still left (:func:`search_width`);
- ranked answers are ``(item_id, score)`` pairs best first; items sharing a code sit together at that code's
  place (:func:`ranked_pairs`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lcrec.features.frames import history_hash

if TYPE_CHECKING:  # pragma: no cover
    from lcrec.config import ServeConfig
    from lcrec.decode.beam_search import DecodeResult, Recommendation
    from lcrec.decode.trie import CodeTrie
    from lcrec.serve.model_version import IndexState, ServedModel


def load_serving(folder: str | Path, index_dir: str | Path, cfg: ServeConfig) -> tuple[ServedModel, IndexState]:
    """The served model of a serving folder (device, dtype, template and history length from ``serve``) and the
    index version in ``index_dir``, its trie built over the model's tokenizer."""
    import torch

    from lcrec.model.device import resolve_device
    from lcrec.serve.model_version import load_index_state, load_served_model

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    served = load_served_model(folder, device=resolve_device(cfg.device), dtype=cfg.dtype)
    served.max_history = cfg.max_history
    served.use_template(cfg.template)
    return served, load_index_state(index_dir, served.tokenizer)


def shown_history(history: Sequence[str], max_history: int) -> list[str]:
    """The part of a history that goes into the prompt (and into the cache key)."""
    history = list(history)
    return history[-max_history:] if max_history > 0 else history


@dataclass(frozen=True)
class HistoryPrompt:
    """What a history becomes at serving: the items shown, the cache key and the prompt's token ids, tokenized on
    first use only (a cached answer needs the key alone; tokenizing was most of a cached request's time)."""

    shown: tuple[str, ...]
    codes: tuple[str, ...]
    history_hash: str
    served: ServedModel = field(repr=False, compare=False)
    user_code: str = ""  # the user named in the prompt ("" = a history-only prompt)

    @cached_property
    def prompt_ids(self) -> list[int]:
        return self.served.prompt_ids(list(self.codes), self.user_code)


def history_prompt(served: ServedModel, state: IndexState, history: Iterable[str],
                   user_id: str | None = None) -> HistoryPrompt | None:
    """The prompt of a history (items the index does not know are left out); None when nothing is left. A model
    trained with the user in the prompt names ``user_id`` by its code when it knows one; the cache key then
    covers the user's code as well as the shown items."""
    shown = shown_history([i for i in history if i in state], served.max_history)
    if not shown:
        return None
    user_code = served.user_code(user_id)
    key = history_hash([user_code, *shown]) if user_code else history_hash(shown)
    return HistoryPrompt(tuple(shown), tuple(state.codes[i] for i in shown), key, served, user_code)


def search_width(k: int, exclude: Collection[str], state: IndexState, beam_width: int, max_beam: int = 0) -> int:
    """Beams (and answers) to search so that ``k`` items remain once ``exclude`` is dropped: at least
    ``beam_width``, widened by the excluded items the index holds, at most ``max_beam`` (0 = no cap)."""
    width = max(beam_width, k + sum(1 for i in exclude if i in state))
    return min(max_beam, width) if max_beam > 0 else width


def rank_prompts(model: Any, trie: CodeTrie, prompts: Sequence[Sequence[int]], beam_width: int, top_k: int,
                 batch_size: int = 64, kv_mode: str = "shared", sort_by_length: bool = True,
                 progress: bool = False) -> DecodeResult:
    """The trie-constrained beam search over every indexed item, for prompts given as token ids."""
    from lcrec.decode.beam_search import trie_beam_search

    return trie_beam_search(model, trie, prompts, beam_width=beam_width, top_k=top_k, batch_size=batch_size,
                            kv_mode=kv_mode, sort_by_length=sort_by_length, progress=progress)


def ranked_pairs(recommendations: Sequence[Recommendation]) -> list[tuple[str, float]]:
    """``(item_id, score)`` best first; the items of a shared code get that code's score."""
    return [(i, r.score) for r in recommendations for i in r.items]


def top_items(pairs: Iterable[tuple[str, float]], exclude: Collection[str], k: int) -> list[tuple[str, float]]:
    """The first ``k`` pairs whose item is not excluded."""
    return [(i, s) for i, s in pairs if i not in exclude][:k]


@dataclass(frozen=True)
class RankedHistory:
    """One history's answer: the prompt it was ranked from and its top items."""

    prompt: HistoryPrompt
    items: list[tuple[str, float]]


def rank_histories(served: ServedModel, state: IndexState, histories: Sequence[Iterable[str]], k: int,
                   beam_width: int, batch_size: int = 64, kv_mode: str = "shared", exclude_history: bool = False,
                   progress: bool = False, user_ids: Sequence[str | None] | None = None) -> list[RankedHistory | None]:
    """Top-``k`` items for each history, in input order (None for a history with no indexed item). With
    ``exclude_history`` the items shown in the prompt are never answered (the search is widened by them);
    ``user_ids`` name each history's user (see :func:`history_prompt`)."""
    user_ids = list(user_ids) if user_ids is not None else [None] * len(histories)
    prompts = [history_prompt(served, state, h, u) for h, u in zip(histories, user_ids, strict=True)]
    live = [(n, p) for n, p in enumerate(prompts) if p is not None]
    out: list[RankedHistory | None] = [None] * len(prompts)
    if not live:
        return out
    widest = max(len(p.shown) for _, p in live) if exclude_history else 0
    width = max(beam_width, k + widest)
    result = rank_prompts(served.model, state.trie, [p.prompt_ids for _, p in live], width, width, batch_size,
                          kv_mode, progress=progress)
    for (n, p), recs in zip(live, result.recommendations, strict=True):
        drop = set(p.shown) if exclude_history else set()
        out[n] = RankedHistory(p, top_items(ranked_pairs(recs), drop, k))
    return out


def rank_by_letters(served: ServedModel, retriever: Any, state: IndexState, histories: Sequence[Sequence[str]],
                    excludes: Sequence[Collection[str]], n: int, batch_size: int = 32,
                    retriever_weight: float = 0.0) -> list[list[tuple[str, float]]]:
    """The rank mode: per history, the retriever's top ``n`` served items not excluded, ordered best first by the
    letter log-probs of one forward pass over the rank prompt (history codes + lettered candidate codes), fused
    with the retriever's own scores at ``retriever_weight`` (:func:`lcrec.decode.letters.fuse_scores`)."""
    from lcrec.decode.letters import fuse_scores, letter_token_ids, order_by_letters, score_letters

    found = retriever.top(histories, n, exclude=excludes, allowed=state.codes)
    live = [m for m, f in enumerate(found) if f]
    out: list[list[tuple[str, float]]] = [[] for _ in histories]
    if not live:
        return out
    prompts, counts = [], []
    for m in live:
        shown = [state.codes[i] for i in histories[m] if i in state.codes]
        prompts.append(served.rank_prompt_ids(shown, [state.codes[c] for c, _ in found[m]]))
        counts.append(len(found[m]))
    scores = score_letters(served.model, prompts, letter_token_ids(served.tokenizer, n), counts, batch_size)
    for m, row in zip(live, scores, strict=True):
        out[m] = order_by_letters([c for c, _ in found[m]],
                                  fuse_scores(row, [v for _, v in found[m]], retriever_weight))
    return out
