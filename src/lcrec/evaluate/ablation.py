"""``lcrec ablation``: which task families help. For each cumulative family set (SEQ, +MUT, +ASY, +ITE, +PER,
+NEG, + the user families USEQ, USER, UPREF) run tasks -> train -> evaluate with the same split, index and settings, each in its own folder
``<work>/ablation/<set>/{tasks,train,evaluate}``, then tabulate the training size, the test metrics (mean over
the next-item templates), valid NDCG@10, ITE NDCG@10 and index->title exact match in ``ablation.md`` and plot
them in ``ablation.png``.

The step functions are reused as they are (``build_tasks``, ``train_model``, ``evaluate_model``); a set only
overrides ``tasks.families`` (plus ``ablation.overrides`` for every set, e.g. a shorter training).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lcrec.config import ConfigError, Params, apply_overrides, params_from_dict

log = logging.getLogger(__name__)

COLUMNS = ("hr@1", "hr@5", "hr@10", "ndcg@5", "ndcg@10")


def set_name(families: list[str]) -> str:
    """``["seq", "mut"]`` -> ``seq+mut`` (the folder and row name)."""
    return "+".join(families)


def parse_sets(sets: list[str]) -> list[list[str]]:
    """``"seq,mut"`` or ``"seq+mut"`` -> ``["seq", "mut"]``; every family must be known and every set non-empty.

    ``+`` needs no quoting on the command line (``--set "ablation.sets=[seq, seq+mut]"``), where a bare
    ``[seq,mut]`` is a list of two sets."""
    from lcrec.tasks.registry import get_family

    out = []
    for s in sets:
        fams = [f.strip() for f in s.replace("+", ",").split(",") if f.strip()]
        if not fams:
            raise ValueError(f"ablation.sets holds an empty set {s!r}; write families like 'seq,mut'")
        for f in fams:
            get_family(f)
        out.append(fams)
    return out


ABLATION_STEPS = ("tasks", "train", "evaluate")  # the steps of the table each set reruns, in the table's order


def params_for_set(params: Params, families: list[str], overrides: list[str], folder: Path | None = None) -> Params:
    """A copy of ``params`` with the ablation overrides applied and ``tasks.families`` set (checked like
    params.yaml); with ``folder``, the set's tasks, train and evaluate steps write under it."""
    raw = apply_overrides(params.to_dict(), list(overrides))
    raw.setdefault("tasks", {})["families"] = list(families)
    if folder is not None:
        dirs = raw.setdefault("paths", {}).setdefault("dirs", {})
        dirs.update({name: str(Path(folder) / name) for name in ABLATION_STEPS})
    try:
        return params_from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"ablation.overrides: {err}") from None


# (header, path into metrics.json) for the columns after the test metrics; one shows when any set has it.
EXTRAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("valid NDCG@10", ("valid", "ndcg@10")),
    ("ITE NDCG@10", ("ite", "mean", "ndcg@10")),
    ("index→title exact", ("index_to_title", "exact_match")),
    ("NDCG@10 with the user's code", ("user_in_prompt", "ndcg@10", "with_user")),
    ("user prediction NDCG@10", ("user_prediction", "model", "ndcg@10")),
    ("rating RMSE", ("rating", "expected", "rmse")),
)
# (header, key of train_metrics.json, how the value is written)
TRAIN_COLUMNS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("train rows", "train_rows", "{:,.0f}".format), ("steps", "steps", "{:,.0f}".format),
    ("train min", "train_runtime_s", lambda seconds: f"{seconds / 60:.1f}"),
)


def _dig(d: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def extras_of(metrics: dict[str, Any]) -> dict[str, float]:
    """The valid, ITE and index->title figures a set's ``metrics.json`` holds (absent ones left out)."""
    out = {}
    for header, path in EXTRAS:
        v = _dig(metrics, path)
        if v is not None:
            out[header] = float(v)
    return out


def ablation_table(results: list[tuple[str, dict[str, Any]]], columns: tuple[str, ...] = COLUMNS,
                   train: dict[str, dict[str, Any]] | None = None) -> str:
    """Markdown: one row per family set: training size (when ``train`` maps set -> ``train_metrics.json``), the
    test metrics (mean over SEQ templates), the valid / ITE / index->title figures that any set has, and the change
    of test NDCG@10 against the first set."""
    train = train or {}
    extras = [extras_of(m) for _, m in results]
    train_cols = [c for c in TRAIN_COLUMNS if any(c[1] in t for t in train.values())]
    extra_cols = [h for h, _ in EXTRAS if any(h in ex for ex in extras)]
    headers = ([h for h, _, _ in train_cols] + [c.upper() for c in columns] + extra_cols + ["ΔNDCG@10 vs first"])
    lines = ["| task families | " + " | ".join(headers) + " |", "|" + "---|" * (len(headers) + 1)]
    base = None
    for (name, m), ex in zip(results, extras, strict=True):
        mean = m["seq"]["mean"]
        if base is None:
            base = mean.get("ndcg@10")
        t = train.get(name, {})
        cells = [write(t[key]) if key in t else "—" for _, key, write in train_cols]
        cells += [f"{mean.get(c, float('nan')):.4f}" for c in columns]
        cells += [f"{ex[h]:.4f}" if h in ex else "—" for h in extra_cols]
        cells.append(f"{mean['ndcg@10'] - base:+.4f}" if base is not None and "ndcg@10" in mean else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_ablation(results: list[tuple[str, dict[str, Any]]], path: Path) -> Path:
    """Bars of test and valid NDCG@10 (and ITE NDCG@10 where measured) per family set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [n for n, _ in results]
    extras = [extras_of(m) for _, m in results]
    series = {"test NDCG@10": [m["seq"]["mean"].get("ndcg@10", 0.0) for _, m in results]}
    for header in ("valid NDCG@10", "ITE NDCG@10"):
        vals = [ex.get(header) for ex in extras]
        if any(v is not None for v in vals):
            series[header] = [v or 0.0 for v in vals]
    x = np.arange(len(names))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 2), 3.8))
    for j, (label, vals) in enumerate(series.items()):
        ax.bar(x + (j - (len(series) - 1) / 2) * width, vals, width, label=label)
    ax.axhline(series["test NDCG@10"][0], ls="--", lw=1, color="black", label=f"{names[0]} test")
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=7)
    ax.set_ylim(0, max(v for vals in series.values() for v in vals) * 1.3 + 1e-6)  # head room for the legend
    ax.set_ylabel("NDCG@10")
    ax.set_title("Ablation of the task families")
    ax.legend(fontsize=7, ncols=len(series) + 1, loc="upper center")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_ablation(params: Params) -> dict[str, Any]:
    """Run every set of ``ablation.sets`` (the table's tasks -> train -> evaluate steps, each set in its own
    folder); write ``<work>/ablation/ablation.{md,json,png}``; return the summary."""
    from lcrec import steps
    from lcrec.evaluate.evaluate import flat_metrics
    from lcrec.tracking import log_step

    cfg = params.ablation
    root = params.paths.step("ablation")
    root.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, dict[str, Any]]] = []
    for families in parse_sets(cfg.sets):
        name = set_name(families)
        folder = root / name
        p = params_for_set(params, families, cfg.overrides, folder)
        metrics_path = p.paths.step("evaluate") / "metrics.json"
        if cfg.skip_done and metrics_path.exists():
            log.info("ablation %s: reusing %s", name, metrics_path)
            results.append((name, json.loads(metrics_path.read_text())))
            continue
        log.info("ablation %s: %s in %s", name, " -> ".join(ABLATION_STEPS), folder)
        for step in ABLATION_STEPS:
            steps.run(step, p)
        m = json.loads(metrics_path.read_text())
        log_step("ablation", p.tracking, p.paths, params={"families": families, "overrides": cfg.overrides},
                 metrics=flat_metrics(m), tags={"lcrec.ablation_set": name})
        results.append((name, m))
    train = {name: json.loads(f.read_text()) for name, _ in results
             if (f := root / name / "train" / "train_metrics.json").exists()}
    table = ablation_table(results, train=train)
    (root / "ablation.md").write_text(table)
    plot_ablation(results, root / "ablation.png")
    summary = {name: {**m["seq"]["mean"], **extras_of(m)} for name, m in results}
    (root / "ablation.json").write_text(json.dumps(summary, indent=2))
    print(table)
    return summary
