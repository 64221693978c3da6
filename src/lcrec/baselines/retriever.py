"""The candidate retriever of the rank mode: the baselines step's SASRec-CE saved with its item vocabulary.

``work/baselines/retriever/`` holds ``sasrec.pt`` (the weights), and ``retriever.json`` (the SASRec recipe, the
item ids in vocabulary order and the split fingerprint). The tasks step reads it to list the candidates of the
``rank`` task, the evaluate step to list the test users' candidates, and the predictor (a copy in the serving
folder) to list an uncached user's candidates per request. Items the retriever was not trained on (added later
by ``index-add``) are never retrieved; they stay reachable through generative decoding.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from lcrec.config import SasrecConfig

RETRIEVER_DIR = "retriever"
WEIGHTS, META = "sasrec.pt", "retriever.json"


def save_retriever(model: Any, cfg: SasrecConfig, item_ids: Sequence[str], folder: str | Path,
                   fingerprint: str = "") -> Path:
    """Write a trained SASRec module (over ``item_ids`` = vocabulary ids 1..N) as a retriever folder."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (WEIGHTS + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
    tmp.replace(folder / WEIGHTS)
    meta = {"kind": "sasrec", "config": dataclasses.asdict(cfg), "item_ids": [str(i) for i in item_ids],
            "fingerprint": fingerprint}
    (folder / META).write_text(json.dumps(meta))
    return folder


def has_retriever(folder: str | Path | None) -> bool:
    return folder is not None and (Path(folder) / META).exists() and (Path(folder) / WEIGHTS).exists()


class Retriever:
    """Top-n catalogue items for histories of item ids, by a saved SASRec-CE (full ranking, batched)."""

    def __init__(self, model: Any, cfg: SasrecConfig, item_ids: Sequence[str], device: str = "cpu"):
        self.model, self.cfg, self.device = model, cfg, device
        self.item_ids = [str(i) for i in item_ids]
        self.vocab = {item: n + 1 for n, item in enumerate(self.item_ids)}
        self._blocked: tuple[Any, Any] | None = None  # (the last ``allowed`` collection, its mask)

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> Retriever:
        import torch

        from lcrec.baselines.sasrec import build_sasrec

        folder = Path(folder)
        if not has_retriever(folder):
            raise FileNotFoundError(
                f"{folder}: no retriever here ({META} + {WEIGHTS}); the baselines step writes one when "
                "baselines.models includes sasrec: run `lcrec baselines` (or `dvc repro baselines`)")
        meta = json.loads((folder / META).read_text())
        known = {f.name for f in dataclasses.fields(SasrecConfig)}
        cfg = SasrecConfig(**{k: v for k, v in meta["config"].items() if k in known})
        model = build_sasrec(len(meta["item_ids"]), cfg)
        model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
        return cls(model.to(device).eval(), cfg, meta["item_ids"], device)

    def user_states(self, histories: Sequence[Sequence[str]], batch_size: int = 256) -> Any:
        """The SASRec state after each history (its last position's hidden vector, (n, hidden) float32 numpy): the
        behaviour side of a user's code (lcrec.users)."""
        import numpy as np
        import torch

        from lcrec.baselines.sasrec import left_pad

        out = []
        with torch.inference_mode():
            for s in range(0, len(histories), batch_size):
                rows = [[self.vocab[i] for i in h if i in self.vocab] for h in histories[s:s + batch_size]]
                seq = torch.as_tensor(left_pad(rows, self.cfg.max_len), device=self.device)
                out.append(self.model.hidden_states(seq)[:, -1].float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.cfg.hidden), np.float32)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.vocab

    def top(self, histories: Sequence[Sequence[str]], n: int, exclude: Sequence[Collection[str]] | None = None,
            allowed: Collection[str] | None = None, batch_size: int = 256) -> list[list[tuple[str, float]]]:
        """The ``n`` best ``(item_id, score)`` per history (best first; ties by catalogue order), never an item of
        that history's ``exclude`` set, and only items in ``allowed`` when given (e.g. the served index). Items
        the retriever does not know are dropped from the histories; an empty history gets the items a
        padding-only sequence scores best."""
        import numpy as np
        import torch

        from lcrec.baselines.sasrec import left_pad

        out: list[list[tuple[str, float]]] = []
        if n <= 0 or not histories:
            return [[] for _ in histories]
        exclude = exclude or [()] * len(histories)
        blocked = None
        if allowed is not None:  # the predictor passes one index state's codes per version: build its mask once
            if self._blocked is None or self._blocked[0] is not allowed:  # held, so never a reused object id
                mask = torch.tensor([True] + [i not in allowed for i in self.item_ids], device=self.device)
                self._blocked = (allowed, mask)
            blocked = self._blocked[1]
        with torch.inference_mode():
            for s in range(0, len(histories), batch_size):
                rows = [[self.vocab[i] for i in h if i in self.vocab] for h in histories[s:s + batch_size]]
                seq = torch.as_tensor(left_pad(rows, self.cfg.max_len), device=self.device)
                scores = self.model.logits(self.model.hidden_states(seq)[:, -1]).float()
                scores[:, 0] = -float("inf")
                if blocked is not None:
                    scores[:, blocked] = -float("inf")
                for r, drop in enumerate(exclude[s:s + batch_size]):
                    ids = [self.vocab[i] for i in drop if i in self.vocab]
                    if ids:
                        scores[r, ids] = -float("inf")
                width = min(n, scores.shape[1] - 1)
                vals, idx = scores.topk(width, dim=-1)  # topk on CPU/GPU is deterministic for distinct scores
                vals, idx = vals.cpu().numpy(), idx.cpu().numpy()
                for v_row, i_row in zip(vals, idx, strict=True):
                    keep = np.isfinite(v_row)
                    out.append([(self.item_ids[int(i) - 1], float(v)) for v, i in zip(v_row[keep], i_row[keep],
                                                                                    strict=True)])
        return out
