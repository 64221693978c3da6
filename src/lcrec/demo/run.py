"""``lcrec demo`` / ``make demo``: the pipeline end to end in one process, then a summary.

The same step functions the CLI, DVC and the KFP components call, in order, under one MLflow parent run; then
(unless ``serve=False``) the predictor in a subprocess on 127.0.0.1, recommendations for a few test users, new
items added through the re-index pipeline while it serves, and where a new item ranks
(:func:`lcrec.demo.serving.run_serving_demo`).
"""

from __future__ import annotations

import json
import time

from lcrec.config import Params
from lcrec.steps import pipeline_steps
from lcrec.steps import run as run_step


def _summary_lines(stats: dict[str, dict], params: Params | None = None) -> list[str]:
    lines = []
    ing = stats.get("ingest")
    if ing:
        lines.append(
            f"dataset {ing['source']}: {ing['users']:,} users, {ing['items_in_catalogue']:,} items, "
            f"{ing['interactions']:,} interactions, avg sequence length {ing['avg_sequence_length']}"
        )
    val = stats.get("validate")
    if val:
        lines.append(
            f"validation: {'passed' if val['success'] else 'FAILED'} — {val['expectations']} expectations, "
            f"{val['failed']} failed; Data Docs at {val['data_docs']}"
        )
        lines += [f"  ingest dropped (under the thresholds): {d}" for d in val.get("ingest_dropped", [])]
    feat = stats.get("features")
    if feat:
        lines.append(
            f"feature store: {feat['n_items']:,} items ({feat['n_items_with_codes']:,} with codes), {feat['n_users']:,} users, "
            f"{feat['n_user_rows']:,} history snapshots, online store materialised={feat['materialized']} ({feat['repo_dir']})"
        )
    spl = stats.get("split")
    if spl:
        lines.append(
            f"after {spl.get('k_core', 5)}-core + leave-one-out: {spl['users']:,} users, {spl['items']:,} items, "
            f"{spl['interactions']:,} interactions, avg sequence length {spl['avg_sequence_length']}; "
            f"{spl['train_examples']:,} train / {spl['valid_examples']:,} valid / {spl['test_examples']:,} test examples"
        )
    emb = stats.get("embed")
    if emb:
        lines.append(f"embeddings: {emb['num_items']:,} items x {emb['dim']} dims ({emb.get('encoder', 'encoder')})")
    idx = stats.get("quantize")
    if idx:
        lines.append(
            f"item index {idx['version']}: collisions {idx['collision_rate_argmin']:.2%} after argmin -> "
            f"{idx['collision_rate_final']:.0%} after assignment; first-level utilisation {idx['utilisation_a']:.0%}; "
            f"nearest neighbour shares the first code for {idx['nn_first_code_agreement']:.0%} of items "
            f"(random codes: {idx['nn_first_code_agreement_random']:.0%})"
        )
    tasks = stats.get("tasks")
    if tasks:
        families: dict[str, float] = {}
        for key, value in tasks.items():
            if key.startswith("train.rows."):
                family = key.split(".")[2]
                families[family] = families.get(family, 0) + value
        mix = ", ".join(f"{f.upper()} {int(n):,}" for f, n in sorted(families.items(), key=lambda kv: -kv[1]))
        lines.append(
            f"alignment tasks: {tasks['train_rows']:,} train rows ({mix}); {tasks['valid_rows']:,} valid, "
            f"{tasks['test_rows']:,} test prompts"
        )
    train = stats.get("train")
    if train:
        per_family = ", ".join(
            f"{f.upper()} {train[f'first_loss_{f}']:.2f}->{train[f'final_loss_{f}']:.2f}"
            for f in train.get("families", []) if f"first_loss_{f}" in train
        )
        lines.append(
            f"train ({train['backbone']}, {train['mode']}): {train['steps']} steps, "
            f"{train['trainable_params']:,} trainable parameters, {train['tokens_per_s']:,.0f} tokens/s; "
            f"loss per family {per_family}; model in {train['model_dir']}"
        )
    lines += _quality_lines(stats, params)
    if params is not None:
        lines += user_list_lines(params)
    reg = stats.get("register")
    if reg:
        lines.append(
            f"registered {reg['model_name']} version {reg['version']}: "
            f"{'promoted to' if reg.get('promoted') else 'not promoted to'} @{reg.get('alias', 'champion')} "
            f"({reg.get('reason', '')}); @{reg.get('alias', 'champion')} = version {reg.get('champion')}"
        )
    cache = stats.get("cache-topk")
    if cache:
        lines.append(
            f"top-K cache (Feast online store): {cache['users']:,} users, {cache['recomputed']:,} decoded, "
            f"{cache['merged']:,} merged with new items, {cache['kept']:,} kept, {cache['pushed']:,} rows pushed "
            f"in {cache['seconds']:.1f} s"
        )
    return lines


def _metric(tree: dict, *keys: str) -> float | None:
    for key in keys:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return float(tree) if isinstance(tree, int | float) else None


def _quality_lines(stats: dict[str, dict], params: Params | None) -> list[str]:
    """Ours vs SASRec-CE vs popularity on the same leave-one-out test users (HR@10 / NDCG@10)."""
    if "evaluate" not in stats and "baselines" not in stats:
        return []
    ours: dict = {}
    if params is not None and (params.paths.step("evaluate") / "metrics.json").exists():
        ours = json.loads((params.paths.step("evaluate") / "metrics.json").read_text())
    base = stats.get("baselines") or {}
    rows = []
    if ours:
        seq = ours.get("seq", {})
        rows.append((f"LC-Rec ({params.train.backbone if params else 'llm'}, {seq.get('users', '?')} users x "
                     f"{seq.get('templates', '?')} templates)", _metric(seq, "mean", "hr@10"),
                     _metric(seq, "mean", "ndcg@10")))
    for name, label in (("sasrec", "SASRec-CE"), ("popularity", "popularity")):
        if name in base:
            users = base.get("protocol", {}).get("users", "?")
            rows.append((f"{label} ({users} users)", _metric(base[name], "test", "hr@10"),
                         _metric(base[name], "test", "ndcg@10")))
    if not rows:
        return []

    def fmt(v: float | None) -> str:
        return "  n/a " if v is None else f"{v:.4f}"

    out = ["test HR@10 / NDCG@10:"]
    out += [f"    {name:<44} {fmt(hr)} / {fmt(ndcg)}" for name, hr, ndcg in rows]
    valid = _metric(ours, "valid", "ndcg@10") if ours else None
    if valid is not None:
        out.append(f"    (valid NDCG@10 of LC-Rec, the registry's promotion metric: {valid:.4f})")
    return out


def _read_lists(path) -> dict[str, list[str]]:
    """user id -> ranked item ids from a ``recommendations*.jsonl`` (a shared code's group gives its items)."""
    from pathlib import Path

    out: dict[str, list[str]] = {}
    if not Path(path).exists():
        return out
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        out[str(row["user_id"])] = [i for e in row["recommended"] for i in ([e] if isinstance(e, str) else e)]
    return out


def user_list_lines(params: Params, users: tuple[str, ...] = ("1", "10", "100"), shown: int = 5,
                    history: int = 5) -> list[str]:
    """For a few test users: the end of their history, the held-out next item, and the top of LC-Rec's and
    SASRec-CE's lists (the target marked), so a reader sees whether each list follows its user's history."""
    import pandas as pd

    split = params.paths.step("split")
    if not (split / "test.parquet").exists():
        return []
    test = pd.read_parquet(split / "test.parquet")
    titles = dict(zip(pd.read_parquet(split / "items.parquet")["item_id"].astype(str),
                      pd.read_parquet(split / "items.parquet")["title"], strict=True))
    lists = {"LC-Rec": _read_lists(params.paths.step("evaluate") / "recommendations.jsonl"),
             "SASRec-CE": _read_lists(params.paths.step("baselines") / "recommendations_sasrec.jsonl")}
    if not any(lists.values()):
        return []
    rows = {str(r.user_id): r for r in test.itertuples()}
    out = ["what three test users get (their last items, the held-out next item, each model's top 5; * = hit):"]
    for user in users:
        if user not in rows:
            continue
        r = rows[user]
        seen = [titles.get(str(i), str(i)) for i in list(r.history)[-history:]]
        out.append(f"  user {user}: ... {'; '.join(seen)}  ->  next: {titles.get(str(r.target), r.target)}")
        for name, by_user in lists.items():
            top = by_user.get(user, [])[:shown]
            if top:
                marked = [("*" if i == str(r.target) else "") + titles.get(i, i) for i in top]
                out.append(f"      {name:<10} {'; '.join(marked)}")
    return out


def run_demo(params: Params, until: str | None = None, serve: bool = True, reindex: str = "pipeline",
             serve_options: dict | None = None) -> dict[str, dict]:
    """Run the pipeline steps of :data:`lcrec.steps.STEPS` (up to ``until``), print the summary, then (``serve``
    and every step ran) the serving demo with new items added through the KFP re-index pipeline
    (``reindex="pipeline"``) or ``lcrec reindex`` (``"cli"``); ``serve_options`` go to :func:`lcrec.demo.serving.run_serving_demo` (users, new_items, show, k, timeout_s)."""
    from lcrec.tracking import pipeline_run

    names = [s.name for s in pipeline_steps()]
    if until is not None and until not in names:
        raise ValueError(f"--until {until!r} is not a step; steps are: {', '.join(names)}")
    stats: dict[str, dict] = {}
    with pipeline_run("demo", params.tracking, params.paths):
        for name in names:
            started = time.perf_counter()
            print(f"==> {name}", flush=True)
            stats[name] = run_step(name, params)
            print(f"    done in {time.perf_counter() - started:.1f} s", flush=True)
            if name == until:
                break
    print("\nSummary")
    for line in _summary_lines(stats, params):
        print("  " + line)
    if serve and until in (None, names[-1]):
        from lcrec.demo.serving import run_serving_demo

        print("\n==> serve", flush=True)
        started = time.perf_counter()
        stats["serve"] = run_serving_demo(params, reindex=reindex, say=lambda line: print(line, flush=True),
                                          **(serve_options or {}))
        print(f"    done in {time.perf_counter() - started:.1f} s", flush=True)
    return stats
