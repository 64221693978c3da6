"""Decoding through HF ``model.generate``: the comparison points for our own beam search.

- :func:`hf_trie_generate`: HF beam search, one prompt at a time, with a true-trie ``prefix_allowed_tokens_fn``
  (every returned code is an item). With ``length_penalty=0`` HF's ``sequences_scores`` are sums of the codes'
  log-probs, the score our beam search ranks by, so in fp32 both must return the same top-K lists.
- :func:`reference_generate`: the reference LC-Rec decoder's way: one allowed-token set per *position* (every
  token seen at that level of any code; EOS after the last level), batch 1, ``max_new_tokens = depth + 1``,
  HF's default length normalisation. Cross-level combinations that are no item get through; the result says
  how many.
- :class:`TrieLogitsProcessor`: a vectorised trie mask for HF ``generate`` on batches (no Python per beam); the
  middle ground between the two above and our own loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lcrec.decode.beam_search import DecodeResult, Recommendation, _check_settings, _left_pad
from lcrec.decode.trie import CodeTrie, TrieTensors

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class ReferenceResult:
    """Output of :func:`reference_generate`: per user the ranked generated codes (valid or not)."""

    codes: list[list[tuple[int, ...]]]
    scores: list[list[float]]
    items: list[list[tuple[str, ...]]]  # () where the code is no item

    @property
    def invalid_count(self) -> int:
        """Returned codes that are no item."""
        return sum(1 for user in self.items for group in user if not group)

    @property
    def total_count(self) -> int:
        return sum(len(user) for user in self.items)


def _generate_kwargs(model: Any, beam_width: int, top_k: int, max_new_tokens: int) -> dict[str, Any]:
    pad = model.config.pad_token_id
    if pad is None:
        pad = model.config.eos_token_id if model.config.eos_token_id is not None else 0
    return dict(
        num_beams=beam_width,
        num_return_sequences=top_k,
        max_new_tokens=max_new_tokens,
        min_new_tokens=0,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
        pad_token_id=pad,
    )


def hf_trie_generate(
    model: Any,
    trie: CodeTrie,
    prompts: Sequence[Sequence[int]],
    beam_width: int = 20,
    top_k: int = 20,
    progress: bool = False,
) -> DecodeResult:
    """HF ``generate`` (beam search, batch 1) constrained by ``trie.allowed`` through ``prefix_allowed_tokens_fn``.

    ``length_penalty=0`` and ``early_stopping=True``: all beams end at exactly ``trie.depth`` tokens, so the
    returned scores are plain sums of log-probs. Codes with a score below -1e8 are dropped (HF fills the list
    with dead beams when fewer than ``top_k`` items are reachable).
    """
    import torch
    from tqdm.auto import tqdm

    _check_settings(beam_width, top_k, "shared")
    device = next(model.parameters()).device
    out: list[list[Recommendation]] = []
    model.eval()
    with torch.inference_mode():
        for prompt in tqdm(prompts, disable=not progress, desc="hf generate + trie"):
            ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)
            p = ids.shape[1]

            def allowed(batch_id: int, seq: torch.Tensor, p: int = p) -> list[int]:
                return trie.allowed(seq[p:].tolist())

            gen = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                prefix_allowed_tokens_fn=allowed,
                length_penalty=0.0,
                early_stopping=True,
                **_generate_kwargs(model, beam_width, top_k, trie.depth),
            )
            recs = []
            for seq, score in zip(gen.sequences[:, p:].tolist(), gen.sequences_scores.tolist(), strict=True):
                if score < -1e8:
                    continue
                code = tuple(seq[: trie.depth])
                recs.append(Recommendation(trie.items(code), code, float(score)))
            out.append(recs)
    return DecodeResult(out)


def reference_generate(
    model: Any,
    trie: CodeTrie,
    prompts: Sequence[Sequence[int]],
    beam_width: int = 20,
    top_k: int = 20,
    eos_token_id: int | None = None,
    progress: bool = False,
) -> ReferenceResult:
    """The reference decoder's way: per-position token sets (batch 1), EOS after the last code level.

    Scores are HF's ``sequences_scores`` with the default length normalisation, as the reference reports them.
    """
    import torch
    from tqdm.auto import tqdm

    _check_settings(beam_width, top_k, "shared")
    eos = eos_token_id if eos_token_id is not None else model.config.eos_token_id
    if isinstance(eos, list):
        eos = eos[0]
    if eos is None:
        raise ValueError("reference_generate needs an EOS token id (pass eos_token_id or set model.config.eos_token_id)")
    levels = [trie.level_tokens(d) for d in range(trie.depth)]
    device = next(model.parameters()).device
    codes, scores, items = [], [], []
    model.eval()
    with torch.inference_mode():
        for prompt in tqdm(prompts, disable=not progress, desc="reference decode"):
            ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)
            p = ids.shape[1]

            def allowed(batch_id: int, seq: torch.Tensor, p: int = p) -> list[int]:
                pos = seq.shape[0] - p
                return levels[pos] if pos < len(levels) else [eos]

            gen = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                prefix_allowed_tokens_fn=allowed,
                eos_token_id=eos,
                early_stopping=True,
                **_generate_kwargs(model, beam_width, top_k, trie.depth + 1),
            )
            user_codes = [tuple(seq[: trie.depth]) for seq in gen.sequences[:, p:].tolist()]
            codes.append(user_codes)
            scores.append([float(s) for s in gen.sequences_scores.tolist()])
            items.append([trie.items(c) for c in user_codes])
    return ReferenceResult(codes, scores, items)


class TrieLogitsProcessor:
    """HF logits processor masking every non-trie token, vectorised over all beams of a batch.

    A beam's trie node is found from its generated tokens (``input_ids[:, prompt_len:]``) by ``depth`` gathers;
    the allowed tokens of all beams are then scattered into one mask. Complete codes allow only ``eos_token_id``
    (or nothing when it is None).
    """

    def __init__(self, tensors: TrieTensors, prompt_len: int, eos_token_id: int | None = None):
        if tensors.token_to_column is None:
            raise ValueError("TrieLogitsProcessor needs trie.to_tensors(device, vocab_size=...)")
        self.tt = tensors
        self.prompt_len = prompt_len
        self.eos = eos_token_id

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        tt = self.tt
        gen = input_ids[:, self.prompt_len :]
        d = gen.shape[1]
        rows = torch.arange(scores.shape[0], device=scores.device)
        node = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
        for level in range(min(d, tt.depth)):
            col = tt.token_to_column[level][gen[:, level]]
            nxt = tt.children[level][node.clamp(min=0), col.clamp(min=0)]
            node = torch.where((node >= 0) & (col >= 0), nxt, torch.full_like(node, -1))
        mask = torch.full_like(scores, -float("inf"))
        if d < tt.depth:
            child = tt.children[d][node.clamp(min=0)]  # [rows, C]
            ok = (child >= 0) & (node >= 0).unsqueeze(1)
            allowed = torch.zeros_like(child, dtype=scores.dtype).masked_fill(~ok, -float("inf"))
            mask[:, tt.level_tokens[d]] = allowed
        elif self.eos is not None:
            mask[rows, self.eos] = 0.0
        return scores + mask


def hf_processor_generate(
    model: Any,
    trie: CodeTrie,
    prompts: Sequence[Sequence[int]],
    beam_width: int = 20,
    top_k: int = 20,
    batch_size: int = 16,
    progress: bool = False,
) -> DecodeResult:
    """HF ``generate`` on left-padded batches with :class:`TrieLogitsProcessor` (``length_penalty=0``)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import LogitsProcessorList

    _check_settings(beam_width, top_k, "shared")
    device = next(model.parameters()).device
    vocab = model.get_output_embeddings().weight.shape[0]
    tt = trie.to_tensors(device, vocab_size=vocab)
    kwargs = _generate_kwargs(model, beam_width, top_k, trie.depth)
    out: list[list[Recommendation]] = []
    model.eval()
    with torch.inference_mode():
        for start in tqdm(range(0, len(prompts), batch_size), disable=not progress, desc="hf generate + processor"):
            batch = prompts[start : start + batch_size]
            ids, mask = _left_pad(batch, kwargs["pad_token_id"], device)
            p = ids.shape[1]
            gen = model.generate(
                input_ids=ids,
                attention_mask=mask,
                logits_processor=LogitsProcessorList([TrieLogitsProcessor(tt, p)]),
                length_penalty=0.0,
                early_stopping=True,
                **kwargs,
            )
            seqs = gen.sequences[:, p:].tolist()
            sc = gen.sequences_scores.tolist()
            for u in range(len(batch)):
                recs = []
                for j in range(u * top_k, (u + 1) * top_k):
                    if sc[j] < -1e8:
                        continue
                    code = tuple(seqs[j][: trie.depth])
                    recs.append(Recommendation(trie.items(code), code, float(sc[j])))
                out.append(recs)
    return DecodeResult(out)
