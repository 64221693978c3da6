"""``lcrec ablation``: which task families help. For each cumulative family set (SEQ, +MUT, +ASY, +ITE, +PER,
+NEG) run tasks -> train -> evaluate with the same split, index and settings, each in its own folder
``<work>/ablation/<set>/{tasks,train,evaluate}``, then tabulate the test metrics (mean over SEQ templates).

The step functions are reused as they are (``build_tasks``, ``train_model``, ``evaluate_model``); a set only
overrides ``tasks.families`` (plus ``ablation.overrides`` for every set, e.g. a shorter training).
"""

from __future__ import annotations

import json
import logging
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


def params_for_set(params: Params, families: list[str], overrides: list[str]) -> Params:
    """A copy of ``params`` with the ablation overrides applied and ``tasks.families`` set (checked like
    params.yaml)."""
    raw = apply_overrides(params.to_dict(), list(overrides))
    raw.setdefault("tasks", {})["families"] = list(families)
    try:
        return params_from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"ablation.overrides: {err}") from None


def ablation_table(results: list[tuple[str, dict[str, Any]]], columns: tuple[str, ...] = COLUMNS) -> str:
    """Markdown: one row per family set (mean over SEQ templates), plus the change of NDCG@10 against the first."""
    lines = ["| task families | " + " | ".join(c.upper() for c in columns) + " | ΔNDCG@10 vs first |",
             "|" + "---|" * (len(columns) + 2)]
    base = None
    for name, m in results:
        mean = m["seq"]["mean"]
        if base is None:
            base = mean.get("ndcg@10")
        delta = f"{mean['ndcg@10'] - base:+.4f}" if base is not None and "ndcg@10" in mean else "—"
        lines.append(f"| {name} | " + " | ".join(f"{mean.get(c, float('nan')):.4f}" for c in columns) + f" | {delta} |")
    return "\n".join(lines) + "\n"


def run_ablation(params: Params) -> dict[str, Any]:
    """Run every set of ``ablation.sets``; write ``<work>/ablation/ablation.{md,json}``; return the summary."""
    from lcrec.evaluate.evaluate import evaluate_model, flat_metrics
    from lcrec.tasks.tasks import build_tasks
    from lcrec.tracking import log_step
    from lcrec.train.train import train_model

    cfg = params.ablation
    root = params.paths.step("ablation")
    root.mkdir(parents=True, exist_ok=True)
    split_dir = params.paths.step("split")
    index_path = params.paths.step("index") / "index.json"
    data_dir = params.paths.step("data")
    data_dir = data_dir if data_dir.exists() else None
    results: list[tuple[str, dict[str, Any]]] = []
    for families in parse_sets(cfg.sets):
        name = set_name(families)
        p = params_for_set(params, families, cfg.overrides)
        folder = root / name
        metrics_path = folder / "evaluate" / "metrics.json"
        if cfg.skip_done and metrics_path.exists():
            log.info("ablation %s: reusing %s", name, metrics_path)
            results.append((name, json.loads(metrics_path.read_text())))
            continue
        log.info("ablation %s: tasks -> train -> evaluate in %s", name, folder)
        build_tasks(p.tasks, split_dir, index_path, folder / "tasks", data_dir)
        train_model(p.train, folder / "tasks", index_path, folder / "train")
        m = evaluate_model(p.evaluate, folder / "train" / "model", folder / "tasks", index_path, split_dir,
                           folder / "evaluate", decode=p.decode, tasks_cfg=p.tasks, data_dir=data_dir)
        log_step("ablation", p.tracking, p.paths, params={"families": families, "overrides": cfg.overrides},
                 metrics=flat_metrics(m), tags={"lcrec.ablation_set": name})
        results.append((name, m))
    table = ablation_table(results)
    (root / "ablation.md").write_text(table)
    summary = {name: m["seq"]["mean"] for name, m in results}
    (root / "ablation.json").write_text(json.dumps(summary, indent=2))
    print(table)
    return summary
