"""The ``baselines`` step: popularity and SASRec-CE on the same split and protocol as the LLM.

Writes ``work/baselines/metrics.json``: ``{"<model>": {"valid": {...}, "test": {...}, ...}}`` plus
``sasrec_history.json`` (per-epoch loss and valid metrics), ``sasrec_curve.png`` (+ ``.csv`` for DVC plots) and
``retriever/`` (the trained SASRec-CE with its item vocabulary: the rank mode's candidate retriever,
:mod:`lcrec.baselines.retriever`).
Protocol: leave-one-out, full ranking over every catalogue item, histories as the split capped them,
history items not masked.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from lcrec.config import BaselinesConfig, Params, SasrecConfig
from lcrec.tracking.series import write_series

log = logging.getLogger(__name__)

MODELS = ("popularity", "sasrec")


def plot_sasrec_curve(history: list[dict[str, float]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax1 = plt.subplots(figsize=(5.5, 3.4))
    epochs = [h["epoch"] for h in history]
    ax1.plot(epochs, [h["loss"] for h in history], color="tab:blue", marker="o", ms=3)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train CE loss", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(epochs, [h.get("valid_ndcg@10", float("nan")) for h in history], color="tab:red", marker="s", ms=3)
    ax2.set_ylabel("valid NDCG@10", color="tab:red")
    ax1.set_title("SASRec-CE training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_lists(data: Any, top: Any, path: Path) -> dict[str, float]:
    """Write each test user's top-10 item ids (``recommendations_<model>.jsonl``, as evaluate writes LC-Rec's)
    and return their diversity (distinct top-1 items, catalogue coverage of the top 10)."""
    from lcrec.evaluate.metrics import list_diversity

    lists = [[data.item_ids[int(v) - 1] for v in row] for row in top]
    with Path(path).open("w") as fh:
        for user, target, items in zip(data.test.users, data.test.targets, lists, strict=True):
            fh.write(json.dumps({"user_id": str(user), "target_item": data.item_ids[int(target) - 1],
                                 "recommended": items}) + "\n")
    return list_diversity(lists, data.num_items, k=10)


def run_baselines_on(cfg: BaselinesConfig, split_dir: Path, out_dir: Path, progress: bool = True,
                     trained_sasrec: Path | None = None, sasrec: SasrecConfig | None = None) -> dict[str, Any]:
    """Score each baseline of ``cfg.models`` on ``split_dir``; write metrics.json (+ SASRec curve) to ``out_dir``.
    ``trained_sasrec``: a folder where the embed step saved its SASRec-CE; scored instead of training one again
    when its recipe and split equal ``sasrec``'s (the top-level ``sasrec`` section; its defaults when None;
    ``reused_from`` says so in metrics.json)."""
    from lcrec.baselines.data import load_split

    unknown = sorted(set(cfg.models) - set(MODELS))
    if unknown:
        raise ValueError(f"baselines.models names unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    import shutil

    from lcrec.baselines.retriever import RETRIEVER_DIR

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / RETRIEVER_DIR, ignore_errors=True)  # written again below when sasrec runs; an
    (out_dir / RETRIEVER_DIR).mkdir()  # empty folder (a DVC output) when it does not, never a stale model
    sasrec = sasrec or SasrecConfig()
    data = load_split(split_dir)
    results: dict[str, Any] = {"protocol": {
        "split": str(split_dir), "users": len(data.test.users), "items": data.num_items,
        "ranking": "full (every catalogue item)", "history_items_masked": False,
        "max_history": max((len(h) for h in data.test.histories), default=0)}}
    if "popularity" in cfg.models:
        from lcrec.baselines.popularity import evaluate_popularity, popularity_order

        started = time.perf_counter()
        results["popularity"] = {**evaluate_popularity(data, cfg.ks), "seconds": round(time.perf_counter() - started, 2)}
        top = popularity_order(data.train_sequences, data.num_items)[:10]
        results["popularity"]["diversity"] = write_lists(data, [top] * len(data.test.users),
                                                         out_dir / "recommendations_popularity.jsonl")
    if "sasrec" in cfg.models:
        import dataclasses

        from lcrec.baselines.retriever import save_retriever
        from lcrec.baselines.sasrec import load_same_sasrec, recipe_fingerprint, train_sasrec

        res = load_same_sasrec(data, sasrec, split_dir, trained_sasrec, cfg.ks, keep_model=True)
        if res is None:
            res = train_sasrec(data, sasrec, cfg.ks, progress=progress, keep_model=True)
        save_retriever(res.pop("model"), sasrec, data.item_ids, out_dir / RETRIEVER_DIR,
                       recipe_fingerprint(sasrec, split_dir))
        (out_dir / "sasrec_history.json").write_text(json.dumps(res["history"], indent=1))
        plot_sasrec_curve(res["history"], out_dir / "sasrec_curve.png")
        write_series(res["history"], "epoch", ["loss", "valid_ndcg@10", "valid_hr@10"], out_dir / "sasrec_curve.csv")
        top = res.pop("test_top")
        res = {k: v for k, v in res.items() if k != "history"}
        results["sasrec"] = {**res, "config": dataclasses.asdict(sasrec),
                             "diversity": write_lists(data, top, out_dir / "recommendations_sasrec.jsonl")}
    (out_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    return results


def flat_metrics(results: dict[str, Any]) -> dict[str, float]:
    """``{"sasrec.test.ndcg@10": ..., ...}`` for MLflow and DVC."""
    out = {}
    for model in MODELS:
        for split in ("valid", "test"):
            for k, v in results.get(model, {}).get(split, {}).items():
                out[f"{model}.{split}.{k}"] = float(v)
    return out


def run_baselines(params: Params) -> dict[str, Any]:
    """``lcrec baselines``: work/split -> work/baselines/metrics.json; logs to MLflow."""
    from lcrec.tracking import log_step

    out_dir = params.paths.step("baselines")
    results = run_baselines_on(params.baselines, params.paths.step("split"), out_dir,
                               trained_sasrec=params.paths.step("embed") / "sasrec", sasrec=params.sasrec)
    arts = [p for p in (out_dir / "metrics.json", out_dir / "sasrec_history.json", out_dir / "sasrec_curve.png")
            if p.exists()]
    logged = {**dataclasses.asdict(params.baselines), "sasrec": dataclasses.asdict(params.sasrec)}
    log_step("baselines", params.tracking, params.paths, params=logged, metrics=flat_metrics(results),
             artifacts=arts)
    return results
