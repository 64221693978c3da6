"""The code-restricted loss equals the full-softmax loss renormalised over the target's level, in one pass."""

from __future__ import annotations

import pytest
import torch

from lcrec.config import TrainConfig
from lcrec.model.code_tokens import level_token_ids
from lcrec.tasks.templates import render_prompt
from lcrec.train.code_loss import LevelTable, check_code_loss, output_rows
from lcrec.train.collator import IGNORE, PackedCollator, encode_example
from lcrec.train.trainer import build_model, response_loss

CODES = [f"<{letter}_{k}>" for letter in "abc" for k in range(5)]


def _batch(tok):
    examples = []
    for i, (prompt, answer) in enumerate([
        ("History: <a_1><b_2><c_3>, <a_0><b_4><c_1>. Next?", "<a_2><b_0><c_4>"),
        ("What is the title of <a_3><b_1><c_0>?", "Movie seven (1995)"),
        ("Write the user's items.", "<a_1><b_1><c_1>, <a_4><b_3><c_2>, <a_0><b_0><c_0>"),
    ]):
        ids, labels, _ = encode_example(tok, render_prompt(prompt), answer, 256)
        examples.append({"input_ids": ids, "labels": labels, "task": i})
    return PackedCollator(0, tok.pad_token_id)(examples)


def _reference(model, batch, levels: list[list[int]]):
    """Per-target losses from the full logits: a code target's log-softmax over its level's tokens only."""
    labels = batch["labels"]
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits.float()
    out = []
    for b, t in (labels[:, 1:] != IGNORE).nonzero().tolist():
        target, row = int(labels[b, t + 1]), logits[b, t]
        level = next((ids for ids in levels if target in ids), None)
        if level is None:
            out.append(-torch.log_softmax(row, -1)[target])
        else:
            out.append(-torch.log_softmax(row[level], -1)[level.index(target)])
    return torch.stack(out)


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_level_loss_equals_the_full_softmax_renormalised_over_the_level(mode):
    # code_token_noise: distinct code rows (they would all start at the mean), so a level's softmax is not flat
    model, tok, _ = build_model(TrainConfig(backbone="tiny-llama", mode=mode, seed=3, code_token_noise=1.0), CODES)
    model.eval()
    batch = _batch(tok)
    levels = level_token_ids(tok)
    table = LevelTable(levels, len(tok))
    total, n, per_token, fam = response_loss(model, batch, table)
    ref = _reference(model, batch, levels)
    torch.testing.assert_close(per_token.detach(), ref, atol=1e-5, rtol=1e-5)
    assert int(n) == ref.numel() and total.item() == pytest.approx(ref.sum().item(), rel=1e-5)
    assert fam is not None and sorted(set(fam.tolist())) == [0, 1, 2]
    # the text targets (the title, separators, EOS) keep the full-vocabulary loss
    full_total, _, full_tokens, _ = response_loss(model, batch, None)
    code_target = torch.isin(batch["labels"][:, 1:][batch["labels"][:, 1:] != IGNORE], torch.tensor(sum(levels, [])))
    torch.testing.assert_close(per_token.detach()[~code_target], full_tokens.detach()[~code_target])
    assert bool((per_token[code_target] < full_tokens[code_target]).all())  # renormalised over fewer tokens


def test_level_loss_trains_the_code_rows_through_lora_trainable_tokens():
    model, tok, _ = build_model(TrainConfig(backbone="tiny-llama", mode="lora", seed=3), CODES)
    table = LevelTable(level_token_ids(tok), len(tok))
    loss, n, _, _ = response_loss(model, _batch(tok), table)
    (loss / n).backward()
    delta = model.get_input_embeddings().token_adapter.trainable_tokens_delta["default"]
    assert delta.grad is not None and delta.grad.abs().sum() > 0
    rows, bias = output_rows(model, torch.tensor(level_token_ids(tok)[0]))
    assert rows.shape == (5, model.config.hidden_size) and bias is None


def test_level_table_maps_tokens_to_levels_and_positions():
    table = LevelTable([[10, 11, 12], [20, 21]], vocab_size=30)
    assert table.level_of[[10, 12, 21, 5]].tolist() == [0, 0, 1, -1]
    assert table.position[[10, 12, 21]].tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match="code tokens of every level"):
        LevelTable([[1, 2], []], vocab_size=5)
    with pytest.raises(ValueError, match="train.code_loss"):
        check_code_loss("softmax")
