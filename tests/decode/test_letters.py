"""The letter verbalizer: one forward pass gives the same scores as scoring each letter answer on its own."""

from __future__ import annotations

import pytest
import torch

from lcrec.decode.letters import (
    ANSWER_PREFIX,
    VerbalizerError,
    candidate_letters,
    fuse_scores,
    letter_token_ids,
    list_candidates,
    order_by_letters,
    score_letters,
)


def rank_prompt(tokenizer, candidates: list[str], history: str) -> list[int]:
    text = f"history: {history}\n{list_candidates(candidates)}\n{ANSWER_PREFIX}"
    return tokenizer(text, add_special_tokens=True)["input_ids"]


def per_candidate_logprob(model, prompt: list[int], letter: int) -> float:
    """log p(letter | prompt) by a full teacher-forced pass over prompt + letter, one candidate at a time."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt + [letter]])).logits[0].float()
    return float(torch.log_softmax(logits[-2], dim=-1)[letter])


def test_letters_are_single_distinct_tokens(tokenizer):
    ids = letter_token_ids(tokenizer, 20)
    assert len(ids) == len(set(ids)) == 20
    for letter, tid in zip(candidate_letters(20), ids, strict=True):
        assert tokenizer.decode([tid]) == letter


def test_scores_equal_per_candidate_scoring(tokenizer, model):
    cands = [["<a_1><b_2><c_3>", "<a_0><b_5><c_1>", "<a_4><b_4><c_4>"],
             ["<a_2><b_1><c_0>", "<a_3><b_3><c_3>", "<a_5><b_0><c_2>", "<a_1><b_1><c_1>", "<a_0><b_0><c_0>"]]
    prompts = [rank_prompt(tokenizer, cands[0], "<a_1><b_1><c_1>"),
               rank_prompt(tokenizer, cands[1], "<a_0><b_2><c_4>, <a_3><b_3><c_5>, the matrix")]
    assert len(prompts[0]) != len(prompts[1])  # the batch is left padded
    letters = letter_token_ids(tokenizer, 5)
    batched = score_letters(model, prompts, letters, counts=[3, 5], batch_size=8)
    assert [len(r) for r in batched] == [3, 5]
    for prompt, row in zip(prompts, batched, strict=True):
        expected = [per_candidate_logprob(model, prompt, letters[i]) for i in range(len(row))]
        assert row == pytest.approx(expected, abs=1e-4)
    one_by_one = [score_letters(model, [p], letters, batch_size=1)[0] for p in prompts]
    assert batched[1] == pytest.approx(one_by_one[1], abs=1e-4)


def test_order_keeps_candidate_order_on_ties():
    assert order_by_letters(["x", "y", "z"], [-1.0, -0.5, -1.0]) == [("y", -0.5), ("x", -1.0), ("z", -1.0)]


def test_too_many_candidates_is_refused(tokenizer):
    with pytest.raises(VerbalizerError, match="1 to 26"):
        letter_token_ids(tokenizer, 27)


def test_fusion_weight_zero_is_the_letters_alone():
    letters = [-3.0, -1.0, -2.0]
    assert fuse_scores(letters, [9.0, 1.0, 5.0], 0.0) == letters
    assert fuse_scores(letters, None, 2.0) == letters  # rows without retriever scores


def test_fusion_by_hand_and_its_limits():
    import math

    letters, retriever = [math.log(0.5), math.log(0.25), math.log(0.25)], [0.0, math.log(3.0), 0.0]
    # retriever softmax over the three: 0.2, 0.6, 0.2; letters already sum to 1
    fused = fuse_scores(letters, retriever, 1.0)
    assert fused == pytest.approx([math.log(0.5 * 0.2), math.log(0.25 * 0.6), math.log(0.25 * 0.2)])
    order = [c for c, _ in order_by_letters(["x", "y", "z"], fused)]
    assert order == ["y", "x", "z"]  # the retriever moved y above the LLM's first
    assert [c for c, _ in order_by_letters(["x", "y", "z"], fuse_scores(letters, retriever, 0.1))][0] == "x"
    big = fuse_scores([-0.1, -5.0, -9.0], [1.0, 2.0, 3.0], 1000.0)
    assert [c for c, _ in order_by_letters(["x", "y", "z"], big)] == ["z", "y", "x"]  # the retriever's order


def test_fusion_refuses_bad_input():
    with pytest.raises(VerbalizerError, match="positive"):
        fuse_scores([-1.0], [0.0], -1.0)
    with pytest.raises(VerbalizerError, match="same candidates"):
        fuse_scores([-1.0, -2.0], [0.0], 1.0)
