"""A transformer + attention-masked mean pooling of its last hidden state, batched, in a fixed order.

Texts are processed longest-first in fixed-size batches (less padding; the order depends only on the texts,
so the output is deterministic), with right padding (with a causal LM the padded positions then cannot
influence the real ones) and pooling in float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class MeanPoolEncoder:
    """``encode(texts) -> (n, dim)`` float32 for a model whose forward returns ``last_hidden_state``."""

    def __init__(self, name: str, model: Any, tokenizer: Any, device: str, batch_size: int, max_length: int):
        self.name, self.model, self.tokenizer = name, model.eval(), tokenizer
        self.device, self.batch_size, self.max_length = device, int(batch_size), int(max_length)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.tokenizer.padding_side = "right"
        self.dim = int(getattr(model.config, "hidden_size", 0) or model.config.d_model)

    def encode(self, texts: list[str], progress: bool = True) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
        starts = range(0, len(order), self.batch_size)
        with torch.inference_mode():
            for s in tqdm(starts, desc=f"embed {self.name}", unit="batch", disable=not progress, mininterval=1.0):
                rows = order[s : s + self.batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in rows], padding=True, truncation=True, max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(torch.float32)
                summed = (hidden.to(torch.float32) * mask).sum(1)
                pooled = summed / mask.sum(1).clamp_min(1.0)
                out[rows] = pooled.cpu().numpy()
        return out
