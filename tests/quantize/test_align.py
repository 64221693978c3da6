import numpy as np
import pandas as pd
import pytest
import torch

from lcrec.model.registry import build_tiny_tokenizer
from lcrec.quantize.align import item_texts, mean_token_embeddings, token_embedding_targets


def test_item_texts_join_fields_and_fall_back_to_the_id():
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["Heat", ""], "description": ["A heist.", None]})
    assert item_texts(items, ["title", "description"]) == ["Heat. A heist.", "b"]
    with pytest.raises(ValueError, match="lacks"):
        item_texts(items, ["brand"])


def test_mean_token_embeddings_is_the_mean_of_the_text_rows():
    tok = build_tiny_tokenizer()
    weight = torch.randn(len(tok), 6)
    texts = ["heat a heist", "", "toy story"]
    out = mean_token_embeddings(texts, tok, weight, batch_size=2)
    for text, row in zip(texts, out, strict=True):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        want = weight[ids].mean(0).numpy() if ids else np.zeros(6, np.float32)
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-6)


def test_targets_follow_the_embedding_order_and_name_missing_items():
    items = pd.DataFrame({"item_id": ["1", "2", "3"], "title": ["heat", "toy story", "alien"],
                          "description": ["", "", ""]})
    out = token_embedding_targets(items, ["3", "1"], "tiny-llama", ["title", "description"])
    ref = token_embedding_targets(items, ["1", "3"], "tiny-llama", ["title", "description"])
    assert out.shape[0] == 2 and np.allclose(out[0], ref[1]) and np.allclose(out[1], ref[0])
    with pytest.raises(ValueError, match="not in the items table"):
        token_embedding_targets(items, ["1", "9"], "tiny-llama", ["title"])
