"""Trie beam search on a tiny random Llama: only real items, exact against exhaustive scoring, identical to HF
generate with a true-trie prefix function (fp32), batching-invariant, and live item additions are reachable."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_lm import CODEBOOK, LEVELS, code_token, random_index

from lcrec.decode.beam_search import DecodeError, decode_batch, trie_beam_search
from lcrec.decode.trie import CodeTrie
from lcrec.testing.hf_generate import hf_processor_generate, hf_trie_generate, reference_generate

MODES = ["shared", "expand"]


def exhaustive_scores(model, prompt: list[int], codes: list[tuple[int, ...]]) -> torch.Tensor:
    """Sum of log-probs of every code after the prompt, by one teacher-forced forward over all codes."""
    depth = len(codes[0])
    ids = torch.tensor([list(prompt) + list(c) for c in codes])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)
    p = len(prompt)
    steps = logp[:, p - 1 : p - 1 + depth, :]  # position p-1+t predicts code token t
    return steps.gather(-1, torch.tensor(codes).unsqueeze(-1)).squeeze(-1).sum(-1)


def all_codes(tokenizer) -> list[tuple[int, ...]]:
    levels = [tokenizer.convert_tokens_to_ids([code_token(lvl, k) for k in range(CODEBOOK)]) for lvl in range(LEVELS)]
    return [tuple(c) for c in itertools.product(*levels)]


def as_lists(result):
    return [[(r.code, r.items) for r in user] for user in result.recommendations]


@pytest.mark.parametrize("kv_mode", MODES)
def test_exact_search_equals_exhaustive_ranking(model, tokenizer, prompts, kv_mode):
    trie = CodeTrie.from_index(random_index(80, seed=3), tokenizer)
    codes = [c for _, c in trie.iter_codes()]
    items = [i for i, _ in trie.iter_codes()]
    width = max(trie.num_nodes(d) for d in range(1, LEVELS + 1))  # beams >= nodes per depth: search is exact
    result = trie_beam_search(model, trie, prompts, beam_width=width, top_k=10, kv_mode=kv_mode)
    for prompt, recs in zip(prompts, result.recommendations, strict=True):
        scores = exhaustive_scores(model, prompt, codes)
        best = torch.argsort(scores, descending=True)[:10].tolist()
        assert [r.items[0] for r in recs] == [items[i] for i in best]
        torch.testing.assert_close(torch.tensor([r.score for r in recs]), scores[best], atol=1e-4, rtol=1e-5)


def test_top1_with_beam_20_matches_exhaustive_and_scores_are_true_sums(model, tokenizer, prompts):
    trie = CodeTrie.from_index(random_index(150, seed=4), tokenizer)
    codes = [c for _, c in trie.iter_codes()]
    items = [i for i, _ in trie.iter_codes()]
    result = trie_beam_search(model, trie, prompts, beam_width=20, top_k=20)
    for prompt, recs in zip(prompts, result.recommendations, strict=True):
        scores = exhaustive_scores(model, prompt, codes)
        assert recs[0].items[0] == items[int(scores.argmax())]
        by_item = dict(zip(items, scores.tolist(), strict=True))
        for r in recs:  # every reported score is that item's true sum of log-probs
            assert r.score == pytest.approx(by_item[r.items[0]], abs=1e-4)
        assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)


@pytest.mark.parametrize("kv_mode", MODES)
@pytest.mark.parametrize(("beam", "top_k", "n_items"), [(8, 5, 120), (20, 20, 200)])
def test_same_top_k_as_hf_generate_with_true_trie(model, tokenizer, prompts, kv_mode, beam, top_k, n_items):
    trie = CodeTrie.from_index(random_index(n_items, seed=5), tokenizer)
    ours = trie_beam_search(model, trie, prompts, beam_width=beam, top_k=top_k, batch_size=2, kv_mode=kv_mode)
    hf = hf_trie_generate(model, trie, prompts, beam_width=beam, top_k=top_k)
    assert as_lists(ours) == as_lists(hf)
    for a, b in zip(ours.recommendations, hf.recommendations, strict=True):
        assert [r.score for r in a] == pytest.approx([r.score for r in b], abs=1e-4)


def test_hf_batched_logits_processor_agrees(model, tokenizer, prompts):
    trie = CodeTrie.from_index(random_index(120, seed=6), tokenizer)
    ours = trie_beam_search(model, trie, prompts, beam_width=8, top_k=8)
    hf = hf_processor_generate(model, trie, prompts, beam_width=8, top_k=8, batch_size=3)
    assert as_lists(ours) == as_lists(hf)


@pytest.mark.parametrize("kv_mode", MODES)
def test_left_padded_batches_equal_one_at_a_time(model, tokenizer, prompts, kv_mode):
    trie = CodeTrie.from_index(random_index(100, seed=7), tokenizer)
    assert len({len(p) for p in prompts}) > 2  # the prompts really have different lengths
    single = trie_beam_search(model, trie, prompts, beam_width=10, top_k=10, batch_size=1, kv_mode=kv_mode)
    for sort in (True, False):
        batched = trie_beam_search(
            model, trie, prompts, beam_width=10, top_k=10, batch_size=len(prompts), kv_mode=kv_mode, sort_by_length=sort
        )
        assert as_lists(batched) == as_lists(single)
        for a, b in zip(batched.recommendations, single.recommendations, strict=True):
            assert [r.score for r in a] == pytest.approx([r.score for r in b], abs=1e-4)


def test_added_item_becomes_reachable(model, tokenizer, prompts):
    prompt = prompts[0]
    codes = all_codes(tokenizer)
    scores = exhaustive_scores(model, prompt, codes)
    order = torch.argsort(scores).tolist()  # worst first
    trie = CodeTrie.from_sequences({f"old{i}": codes[j] for i, j in enumerate(order[:40])})
    best_code = codes[order[-1]]
    before = trie_beam_search(model, trie, [prompt], beam_width=20, top_k=20)
    assert "new" not in before.item_lists()[0]
    trie.add("new", best_code)  # the live re-index path: no rebuild
    after = trie_beam_search(model, trie, [prompt], beam_width=20, top_k=20)
    assert after.recommendations[0][0].items == ("new",)
    assert after.recommendations[0][0].score == pytest.approx(float(scores[order[-1]]), abs=1e-4)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_items=st.integers(1, 120),
    seed=st.integers(0, 10_000),
    beam=st.integers(1, 12),
    top_frac=st.floats(0.0, 1.0),
    kv_mode=st.sampled_from(MODES),
    batch=st.integers(1, 5),
)
def test_property_only_real_items(model, tokenizer, prompts, n_items, seed, beam, top_frac, kv_mode, batch):
    index = random_index(n_items, seed=seed)
    trie = CodeTrie.from_index(index, tokenizer)
    top_k = max(1, round(top_frac * beam))
    result = trie_beam_search(model, trie, prompts, beam_width=beam, top_k=top_k, batch_size=batch, kv_mode=kv_mode)
    vocab = tokenizer.get_vocab()
    for recs in result.recommendations:
        assert 1 <= len(recs) <= min(top_k, n_items)
        assert len({r.code for r in recs}) == len(recs)  # no code twice
        for r in recs:
            assert len(r.items) == 1 and r.items[0] in index
            assert r.code == tuple(vocab[t] for t in index[r.items[0]])
            assert r.score <= 0.0


def test_reference_style_decode_lets_non_items_through(model, tokenizer, prompts):
    trie = CodeTrie.from_index(random_index(25, seed=8), tokenizer)  # sparse: 25 of 216 codes are items
    ref = reference_generate(model, trie, prompts, beam_width=10, top_k=10)
    assert ref.total_count == 10 * len(prompts)
    assert ref.invalid_count > 0
    ours = trie_beam_search(model, trie, prompts, beam_width=10, top_k=10)
    assert all(r.items for recs in ours.recommendations for r in recs)


def test_settings_errors(model, tokenizer, prompts):
    trie = CodeTrie.from_index(random_index(20), tokenizer)
    with pytest.raises(DecodeError, match="top_k=30 must lie in 1..beam_width=20"):
        trie_beam_search(model, trie, prompts, beam_width=20, top_k=30)
    with pytest.raises(DecodeError, match="kv_mode"):
        trie_beam_search(model, trie, prompts, kv_mode="paged", top_k=5, beam_width=5)
    with pytest.raises(DecodeError, match="empty"):
        trie_beam_search(model, trie, [[]], top_k=5, beam_width=5)
    ids = torch.tensor([[5, 6, 0]])
    with pytest.raises(DecodeError, match="left padded"):
        decode_batch(model, trie.to_tensors("cpu"), ids, torch.tensor([[1, 1, 0]]), 5, 5)


@pytest.mark.parametrize("kv_mode", MODES)
def test_level_normalised_scores_equal_exhaustive_level_softmax(model, tokenizer, prompts, kv_mode):
    """A model trained with train.code_loss=level is decoded with a softmax over each level's code tokens."""
    from lcrec.model.code_tokens import level_token_ids

    trie = CodeTrie.from_index(random_index(80, seed=3), tokenizer)
    codes = [c for _, c in trie.iter_codes()]
    items = [i for i, _ in trie.iter_codes()]
    levels = level_token_ids(tokenizer)
    width = max(trie.num_nodes(d) for d in range(1, LEVELS + 1))
    model.config.code_score_norm, model.config.code_level_ids = "level", levels
    try:
        result = trie_beam_search(model, trie, prompts, beam_width=width, top_k=10, kv_mode=kv_mode)
    finally:
        model.config.code_score_norm, model.config.code_level_ids = "full", None
    for prompt, recs in zip(prompts, result.recommendations, strict=True):
        ids = torch.tensor([list(prompt) + list(c) for c in codes])
        with torch.no_grad():
            logits = model(input_ids=ids).logits.float()
        p = len(prompt)
        scores = torch.zeros(len(codes))
        for t in range(LEVELS):
            level = torch.tensor(levels[t])
            lp = torch.log_softmax(logits[:, p - 1 + t][:, level], dim=-1)
            col = torch.tensor([levels[t].index(c[t]) for c in codes])
            scores += lp.gather(1, col[:, None]).squeeze(1)
        best = torch.argsort(scores, descending=True)[:10].tolist()
        assert [r.items[0] for r in recs] == [items[i] for i in best]
        torch.testing.assert_close(torch.tensor([r.score for r in recs]), scores[best], atol=1e-4, rtol=1e-5)
        full = exhaustive_scores(model, prompt, codes)
        assert not torch.allclose(full[best], scores[best])  # a different normalisation, not a relabelling


def test_a_level_marked_model_without_level_ids_is_refused(model, tokenizer, prompts):
    trie = CodeTrie.from_index(random_index(20, seed=1), tokenizer)
    model.config.code_score_norm, model.config.code_level_ids = "level", None
    try:
        with pytest.raises(DecodeError, match="code_score_norm=level"):
            trie_beam_search(model, trie, prompts[:1], beam_width=4, top_k=4)
    finally:
        model.config.code_score_norm = "full"


@pytest.mark.parametrize("norm", ["full", "level"])
def test_teacher_forced_code_scores_equal_the_beam_scores(model, tokenizer, prompts, norm):
    """score_codes gives any item the score beam search ranks it by, whatever the prompt lengths in a batch."""
    from lcrec.decode.beam_search import score_codes
    from lcrec.model.code_tokens import level_token_ids

    trie = CodeTrie.from_index(random_index(80, seed=3), tokenizer)
    if norm == "level":
        model.config.code_score_norm, model.config.code_level_ids = "level", level_token_ids(tokenizer)
    try:
        result = trie_beam_search(model, trie, prompts, beam_width=20, top_k=8)
        pairs = [(p, r.code) for p, recs in zip(prompts, result.recommendations, strict=True) for r in recs]
        scored = score_codes(model, trie, [p for p, _ in pairs], [c for _, c in pairs], batch_size=5)
    finally:
        model.config.code_score_norm, model.config.code_level_ids = "full", None
    beams = [r.score for recs in result.recommendations for r in recs]
    torch.testing.assert_close(torch.tensor(scored), torch.tensor(beams), atol=1e-4, rtol=1e-5)
    if norm == "full":  # and the exhaustive teacher-forced sum, prompt by prompt
        p0 = prompts[0]
        codes0 = [r.code for r in result.recommendations[0]]
        torch.testing.assert_close(torch.tensor(score_codes(model, trie, [p0] * len(codes0), codes0)),
                                   exhaustive_scores(model, p0, codes0), atol=1e-4, rtol=1e-5)
    with pytest.raises(DecodeError, match="one code per prompt"):
        score_codes(model, trie, prompts, [])


@pytest.mark.parametrize("norm", ["full", "level"])
def test_scoring_codes_after_each_prompt_once_equals_scoring_each_pair(model, tokenizer, prompts, norm):
    from lcrec.decode.beam_search import score_codes, score_codes_after
    from lcrec.model.code_tokens import level_token_ids

    trie = CodeTrie.from_index(random_index(80, seed=3), tokenizer)
    codes = [c for _, c in trie.iter_codes()][:7]
    if norm == "level":
        model.config.code_score_norm, model.config.code_level_ids = "level", level_token_ids(tokenizer)
    try:
        table = score_codes_after(model, trie, prompts, codes, batch_size=21)  # 3 left-padded prompts a batch
        pairs = score_codes(model, trie, [p for p in prompts for _ in codes], codes * len(prompts))
    finally:
        model.config.code_score_norm, model.config.code_level_ids = "full", None
    torch.testing.assert_close(torch.tensor(table).flatten(), torch.tensor(pairs), atol=1e-4, rtol=1e-5)
    assert score_codes_after(model, trie, prompts, []) == [[] for _ in prompts]
