"""The ``evaluate`` step: the paper's protocol on the trained model.

- **SEQ** (next-item prediction): leave-one-out test users, trie-constrained beam search over the **whole**
  catalogue (``decode`` section: beam 20), HR@1/5/10 and NDCG@5/10 per SEQ template, then mean/min/max over the
  templates (LC-Rec's ``--test_prompt_ids all``). Items sharing a code count as one rank (a shared code is a hit).
  History items are **not** masked: the model may recommend an item the user already saw (the same rule as the
  baselines). The same users are evaluated for every template (``evaluate.max_users`` keeps CPU runs short).
- **ITE** (user intention): the prompts the tasks step wrote (``test_ite.jsonl``: the teacher's intention about
  each test user's test item); the model must write that item's code (trie-constrained, same metrics), from the
  query alone (``ite.query2index``) and from history + query (``ite.history_query2index``). No teacher is called here.
- **RANK** (the rank decode mode, when the tasks step wrote ``test_rank.jsonl``, i.e. the rank family is on): the
  retriever's candidates per test user re-ordered by the letter log-probs of one forward pass, with the retriever's
  scores as a prior (``decode.rank_retriever_weight``); overall and rank-only metrics, of the LLM alone too, against
  the retriever's own order, and each weight of ``evaluate.rank_weights`` on valid and test
  (:mod:`lcrec.evaluate.rank_mode`).
- **USER** (when the tasks step wrote user prompts, :mod:`lcrec.evaluate.user_tasks`): next-item metrics with the
  user's code in the prompt against without it (same model, paired per user, ``user_in_prompt``); user prediction
  under a trie of user codes against the most active users; rating RMSE/MAE against the user's mean rating.
- **index -> title**: greedy, unconstrained generation (the answer is text) for a seeded sample of items with the
  title-only ``mut.index2item`` template; exact match of the generated title (outer quotes and spaces stripped).

Writes ``metrics.json``, ``per_template.csv``, ``seq_templates.png``, ``recommendations.jsonl`` (the first
template's top-k per user) and ``ranks.jsonl`` (the target's rank for every scored prompt) to ``out_dir``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lcrec.config import DecodeConfig, EvaluateConfig, Params
from lcrec.evaluate.metrics import list_diversity, metric_names, ranking_metrics
from lcrec.quantize.index_file import read_code_lists

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------- inputs
def read_jsonl(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `lcrec tasks` first (it writes the test prompts)")
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def user_twin(template: str) -> str:
    """The user-in-prompt wording of a next-item template (``seqall/1`` -> ``useq/1``), scored beside it."""
    pool, _, number = template.rpartition("/")
    return f"useq/{number}" if pool in ("seq", "seqall") else template


def select_rows(rows: list[dict[str, Any]], max_users: int = 0, templates: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The rows of the first ``max_users`` users by user id (all when 0), restricted to ``templates`` if given
    (with their user-in-prompt twins, :func:`user_twin`, when the test prompts hold them)."""
    if templates:
        known = {r["template"] for r in rows}
        missing = sorted(set(templates) - known)
        if missing:
            raise ValueError(f"evaluate.templates names {', '.join(missing)}, absent from the test prompts; "
                             f"available: {', '.join(sorted(known, key=_natural))} (--set \"evaluate.templates=[]\" "
                             "scores all of them; the test prompts follow tasks.families)")
        wanted = set(templates) | {twin for t in templates if (twin := user_twin(t)) in known}
        rows = [r for r in rows if r["template"] in wanted]
    users = sorted({str(r["user_id"]) for r in rows})
    if max_users > 0:
        keep = set(users[:max_users])
        rows = [r for r in rows if str(r["user_id"]) in keep]
    return rows


def summarize(per_group: dict[str, dict[str, float]], names: Sequence[str]) -> dict[str, dict[str, float]]:
    """mean/min/max over groups (templates) of each metric."""
    out: dict[str, dict[str, float]] = {"mean": {}, "min": {}, "max": {}}
    for name in names:
        values = [m[name] for m in per_group.values()]
        if values:
            out["mean"][name] = sum(values) / len(values)
            out["min"][name] = min(values)
            out["max"][name] = max(values)
    return out


# --------------------------------------------------------------------------------------------------- ranking
def rank_rows(model: Any, tok: Any, trie: Any, rows: list[dict[str, Any]], decode: DecodeConfig, ks: Sequence[int],
              group_key: str = "template", progress: bool = True) -> tuple[dict[str, dict[str, float]], list, dict]:
    """Rank every row's prompt through the serving core; metrics per ``group_key`` value. Returns (per-group metrics, ranked groups
    per row, decode stats)."""
    from lcrec.serve.recommend import rank_prompts

    prompts = [tok(r["instruction"], add_special_tokens=True)["input_ids"] for r in rows]
    result = rank_prompts(model, trie, prompts, decode.beam_width, decode.top_k, decode.batch_size, decode.kv_mode,
                          decode.sort_by_length, progress)
    ranked = result.ranked_groups()
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_group[r[group_key]].append(i)
    per_group = {}
    for g in sorted(by_group, key=_natural):
        idx = by_group[g]
        m = ranking_metrics([ranked[i] for i in idx], [str(rows[i]["target_item"]) for i in idx], ks)
        per_group[g] = {**m, "users": float(len(idx))}
    return per_group, ranked, result.stats


def _natural(name: str) -> tuple:
    head, _, tail = name.rpartition("/")
    return (head, int(tail)) if tail.isdigit() else (head, 0, tail)


def invalid_recommendations(ranked: list[list[tuple[str, ...]]], catalogue: set[str]) -> int:
    """How many recommended items are not catalogue items (0 by construction of the trie)."""
    return sum(1 for groups in ranked for g in groups for item in g if item not in catalogue)


# --------------------------------------------------------------------------------------------------- ITE
def ite_rows(tasks_dir: Path, users: set[str]) -> list[dict[str, Any]]:
    """The test-time ITE prompts the tasks step wrote (``test_ite.jsonl``) for the evaluated users."""
    path = Path(tasks_dir) / "test_ite.jsonl"
    rows = read_jsonl(path) if path.exists() else []
    if not rows:
        raise ValueError(f"{path} holds no ITE test prompts: evaluate.ite needs the ite family in tasks.families; "
                         "add it and rerun `lcrec tasks` (or set evaluate.ite=false)")
    return [r for r in rows if str(r["user_id"]) in users]


# --------------------------------------------------------------------------------------------------- index -> title
def title_template():
    """The first title-only ``mut.index2item`` template (response ``"{title}"``)."""
    from lcrec.tasks.templates import pool

    for t in pool("mut.index2item"):
        if t.fields == frozenset({"item", "title"}):
            return t
    raise ValueError("no title-only template in the mut.index2item pool")


def clean_title(text: str) -> str:
    """The generated answer's first line without outer spaces and quotes."""
    text = text.strip().split("\n", 1)[0].strip()
    if len(text) >= 2 and text[0] == '"' and text.endswith('"'):
        text = text[1:-1]
    elif text.startswith('"'):
        text = text[1:]
    return text.strip()


def greedy_generate(model: Any, tok: Any, prompts: list[str], max_new_tokens: int, batch_size: int = 16) -> list[str]:
    """Plain greedy decoding (no constraint), left padded batches; the generated text of each prompt."""
    import torch

    side = tok.padding_side
    tok.padding_side = "left"
    device = next(model.parameters()).device
    out: list[str] = []
    try:
        with torch.inference_mode():
            for s in range(0, len(prompts), batch_size):
                enc = tok(prompts[s:s + batch_size], return_tensors="pt", padding=True).to(device)
                gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                out += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tok.padding_side = side
    return out


def title_match(model: Any, tok: Any, codes: dict[str, str], titles: dict[str, str], n_items: int, seed: int,
                max_new_tokens: int, batch_size: int = 16) -> dict[str, Any]:
    """Exact-match rate of generated titles for a seeded sample of ``n_items`` indexed items with a title."""
    from lcrec.tasks.templates import render_prompt

    pool_ = sorted(i for i in codes if titles.get(i))
    items = sorted(random.Random(seed).sample(pool_, min(n_items, len(pool_))))
    if not items:
        return {"items": 0, "exact_match": 0.0, "examples": []}
    tpl = title_template()
    prompts = [render_prompt(tpl.fill({"item": codes[i], "title": titles[i]})[0]) for i in items]
    texts = greedy_generate(model, tok, prompts, max_new_tokens, batch_size)
    hits = [clean_title(t) == titles[i] for i, t in zip(items, texts, strict=True)]
    examples = [{"item_id": i, "title": titles[i], "generated": t.strip(), "match": h}
                for i, t, h in list(zip(items, texts, hits, strict=True))[:10]]
    return {"items": len(items), "exact_match": sum(hits) / len(hits), "template": tpl.id, "examples": examples}


# --------------------------------------------------------------------------------------------------- outputs
def plot_templates(per_template: dict[str, dict[str, float]], path: Path, metrics: Sequence[str] = ("hr@10", "ndcg@10"),
                   baselines: dict[str, dict[str, float]] | None = None) -> Path:
    """Bars per SEQ template for each metric, with the mean (dashed) and baselines (dotted) as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(per_template)
    x = np.arange(len(names))
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 3.6))
    for j, m in enumerate(metrics):
        vals = [per_template[n].get(m, 0.0) for n in names]
        bars = ax.bar(x + (j - (len(metrics) - 1) / 2) * width, vals, width, label=m)
        ax.axhline(sum(vals) / max(len(vals), 1), ls="--", lw=1, color=bars.patches[0].get_facecolor(),
                   label=f"{m} mean")
    for name, vals in (baselines or {}).items():
        if "ndcg@10" in vals:
            ax.axhline(vals["ndcg@10"], ls=":", lw=1.2, color="black")
            ax.text(len(names) - 0.5, vals["ndcg@10"], f" {name} ndcg@10", va="bottom", ha="right", fontsize=7)
    tallest = max([per_template[n].get(m, 0.0) for n in names for m in metrics]
                  + [v.get("ndcg@10", 0.0) for v in (baselines or {}).values()] + [1e-6])
    ax.set_ylim(0, tallest * 1.35)  # head room for the legend above the bars
    pools = {n.rpartition("/")[0] for n in names}
    ax.set_xticks(x, [n.split("/")[-1] for n in names] if len(pools) == 1 else names,
                  rotation=0 if len(pools) == 1 else 60, fontsize=None if len(pools) == 1 else 7)
    ax.set_xlabel(f"{next(iter(pools)).upper()} template" if len(pools) == 1 else "next-item template")
    ax.set_title("Next-item prediction per prompt template")
    ax.legend(fontsize=7, ncols=4, loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_per_template_csv(per_template: dict[str, dict[str, float]], names: Sequence[str], path: Path) -> Path:
    lines = ["template,users," + ",".join(names)]
    for t, m in per_template.items():
        lines.append(f"{t},{int(m['users'])}," + ",".join(f"{m[n]:.6f}" for n in names))
    path.write_text("\n".join(lines) + "\n")
    return path


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``seq.mean.ndcg@10``, ``seq.min.hr@10``, ``ite.mean.hr@10``, ``title.exact_match``... for MLflow."""
    out: dict[str, float] = {}
    for part in ("seq", "ite"):
        for agg in ("mean", "min", "max"):
            for k, v in metrics.get(part, {}).get(agg, {}).items():
                out[f"{part}.{agg}.{k}"] = float(v)
    for view in ("overall", "rank_only"):
        for k, v in metrics.get("rank", {}).get(view, {}).items():
            out[f"rank.{view}.{k}"] = float(v)
    for k, v in metrics.get("rank", {}).get("llm", {}).get("overall", {}).items():
        out[f"rank.llm.overall.{k}"] = float(v)
    if "rank" in metrics:
        out["rank.weight"] = float(metrics["rank"]["weight"])
        out["rank.retriever_recall"] = float(metrics["rank"]["retriever"]["recall"])
        out["rank.users_per_s"] = float(metrics["rank"]["users_per_s"])
    for k, v in metrics.get("user_in_prompt", {}).items():
        if isinstance(v, dict):
            out[f"user_in_prompt.{k}.with_user"] = float(v["with_user"])
            out[f"user_in_prompt.{k}.without_user"] = float(v["without_user"])
    for side in ("model", "most_active"):
        for k, v in metrics.get("user_prediction", {}).get(side, {}).items():
            out[f"user_prediction.{side}.{k}"] = float(v)
    for side, v in metrics.get("rating", {}).items():
        if isinstance(v, dict):
            out[f"rating.{side}.rmse"], out[f"rating.{side}.mae"] = float(v["rmse"]), float(v["mae"])
    if "index_to_title" in metrics:
        out["title.exact_match"] = float(metrics["index_to_title"]["exact_match"])
    for k, v in metrics.get("seq", {}).get("diversity", {}).items():
        if isinstance(v, int | float):
            out[f"seq.diversity.{k}"] = float(v)
    out["seq.users"] = float(metrics.get("seq", {}).get("users", 0))
    return out


def user_side_metrics(cfg: EvaluateConfig, model: Any, tok: Any, tasks_dir: Path, split_dir: Path, users: set[str],
                      decode: DecodeConfig, ks: Sequence[int]) -> dict[str, Any]:
    """``user_prediction`` and ``rating`` metrics over the selected users, when the tasks step wrote their prompts."""
    from lcrec.evaluate.user_tasks import evaluate_rating, evaluate_user_prediction
    from lcrec.split.readers import training_items
    from lcrec.tasks.tasks import USER_CODES, read_user_codes_file

    out: dict[str, Any] = {}
    tasks_dir = Path(tasks_dir)
    user_rows = [r for r in read_jsonl_if_any(tasks_dir / "test_user.jsonl") if str(r["user_id"]) in users]
    if cfg.user_tasks and user_rows:
        codes = read_user_codes_file(tasks_dir / USER_CODES)["codes"]
        out["user_prediction"] = evaluate_user_prediction(model, tok, user_rows, codes, training_items(split_dir),
                                                          decode, ks)
    rating_rows = [r for r in read_jsonl_if_any(tasks_dir / "test_rating.jsonl") if str(r["user_id"]) in users]
    if cfg.user_tasks and rating_rows:
        out["rating"] = evaluate_rating(model, tok, rating_rows, decode.batch_size)
    return out


def write_ranks(rows: Sequence[dict[str, Any]], ranked: Sequence[Sequence[Any]], path: Path) -> Path:
    """One line per scored test prompt: user, template, target and its 0-based rank (null when not in the list),
    so two runs can be compared user by user (paired standard errors)."""
    from lcrec.evaluate.metrics import rank_of

    with Path(path).open("w") as fh:
        for r, groups in zip(rows, ranked, strict=True):
            fh.write(json.dumps({"user_id": r["user_id"], "template": r["template"], "target_item": r["target_item"],
                                 "rank": rank_of(str(r["target_item"]), groups)}) + "\n")
    return Path(path)


def read_jsonl_if_any(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path) if Path(path).exists() else []


# --------------------------------------------------------------------------------------------------- the step
def evaluate_model(cfg: EvaluateConfig, model_dir: Path, tasks_dir: Path, index_path: Path, split_dir: Path,
                   out_dir: Path, decode: DecodeConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Score the model in ``model_dir`` (``lcrec train`` output) on the test prompts of ``tasks_dir``; write
    metrics.json and plots to ``out_dir``; return the metrics (nested, see the module doc)."""
    from lcrec.decode.trie import CodeTrie
    from lcrec.evaluate.user_tasks import with_and_without_user
    from lcrec.model.device import resolve_device, resolve_dtype
    from lcrec.model.trained import load_trained
    from lcrec.tasks.tasks import load_index, load_items

    decode = decode or DecodeConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ks = list(cfg.ks)
    names = metric_names(ks)
    started = time.perf_counter()

    rows = select_rows(read_jsonl(Path(tasks_dir) / "test_seq.jsonl"), cfg.max_users, cfg.templates)
    if not rows:
        raise ValueError(f"{tasks_dir}/test_seq.jsonl holds no test prompts for the selected users/templates")
    users = {str(r["user_id"]) for r in rows}
    device = resolve_device(cfg.device)
    model, tok = load_trained(model_dir, dtype=resolve_dtype(cfg.dtype, device, "evaluate.dtype"), merge=True)
    model = model.to(device)
    index = read_code_lists(index_path)
    trie = CodeTrie.from_index(index, tok)
    catalogue = set(index)

    per_template, ranked, stats = rank_rows(model, tok, trie, rows, decode, ks, progress=progress)
    first = next(iter(per_template))
    first_lists = []
    with (out_dir / "recommendations.jsonl").open("w") as fh:
        for r, groups in zip(rows, ranked, strict=True):
            if r["template"] == first:
                first_lists.append(groups)
                fh.write(json.dumps({"user_id": r["user_id"], "target_item": r["target_item"],
                                     "recommended": [list(g) for g in groups]}) + "\n")
    write_ranks(rows, ranked, out_dir / "ranks.jsonl")
    metrics: dict[str, Any] = {
        "seq": {"per_template": per_template, **summarize(per_template, names), "templates": len(per_template),
                "users": len(users), "invalid_items": invalid_recommendations(ranked, catalogue),
                "diversity": {**list_diversity(first_lists, len(catalogue), k=10), "template": first},
                "users_per_s": stats.get("users_per_s", 0.0)},
        "protocol": {"split": "leave-one-out test", "ranking": "trie-constrained beam search over every indexed item",
                     "beam_width": decode.beam_width, "top_k": decode.top_k, "history_items_masked": False,
                     "colliding_items": "one rank (a shared code is a hit)", "catalogue_items": len(catalogue),
                     "model_dir": str(model_dir), "device": device},
    }
    user_prompt = with_and_without_user(rows, ranked, ks)
    if user_prompt is not None:
        metrics["user_in_prompt"] = user_prompt
    if cfg.valid:
        valid_rows = [r for r in read_jsonl(Path(tasks_dir) / "valid.jsonl") if str(r["user_id"]) in users]
        if valid_rows:
            per_valid, valid_ranked, _ = rank_rows(model, tok, trie, valid_rows, decode, ks, progress=progress)
            summary = summarize(per_valid, names)
            metrics["valid"] = {**summary["mean"], "per_template": per_valid, "rows": len(valid_rows),
                                "invalid_items": invalid_recommendations(valid_ranked, catalogue)}
    if cfg.ite:
        ite = ite_rows(tasks_dir, users)
        if ite:
            per_task, ite_ranked, _ = rank_rows(model, tok, trie, ite, decode, ks, group_key="task", progress=progress)
            metrics["ite"] = {"per_task": per_task, **summarize(per_task, names), "rows": len(ite),
                              "invalid_items": invalid_recommendations(ite_ranked, catalogue)}
    rank_path = Path(tasks_dir) / "test_rank.jsonl"
    if cfg.rank and rank_path.exists():
        rank_rows_ = [r for r in read_jsonl(rank_path) if str(r["user_id"]) in users]
        if rank_rows_:
            from lcrec.evaluate.rank_mode import evaluate_rank_mode

            valid_rank_rows = [r for r in read_jsonl_if_any(Path(tasks_dir) / "valid_rank.jsonl")
                               if str(r["user_id"]) in users]
            metrics["rank"], reordered = evaluate_rank_mode(model, tok, rank_rows_, ks, decode.batch_size,
                                                            decode.rank_retriever_weight, valid_rank_rows,
                                                            cfg.rank_weights)
            with (out_dir / "recommendations_rank.jsonl").open("w") as fh:
                for r, items in zip(rank_rows_, reordered, strict=True):
                    fh.write(json.dumps({"user_id": r["user_id"], "target_item": r["target_item"],
                                         "recommended": [i for i, _ in items]}) + "\n")
    metrics.update(user_side_metrics(cfg, model, tok, tasks_dir, split_dir, users, decode, ks))
    if cfg.title_items > 0:
        codes = load_index(index_path)
        titles = {i: info.title for i, info in load_items(split_dir).items()}
        metrics["index_to_title"] = title_match(model, tok, codes, titles, cfg.title_items, cfg.seed,
                                                cfg.title_max_new_tokens)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_per_template_csv(per_template, names, out_dir / "per_template.csv")
    plot_templates(per_template, out_dir / "seq_templates.png")
    log.info("evaluate: %d users x %d templates: mean NDCG@10 %.4f HR@10 %.4f", len(users), len(per_template),
             metrics["seq"]["mean"].get("ndcg@10", float("nan")), metrics["seq"]["mean"].get("hr@10", float("nan")))
    return metrics


def run_evaluate(params: Params) -> dict[str, Any]:
    """``lcrec evaluate``: work/train/model + work/tasks + work/index + work/split -> work/evaluate; MLflow."""
    from lcrec.tracking import log_step

    out_dir = params.paths.step("evaluate")
    metrics = evaluate_model(
        params.evaluate, params.paths.step("train") / "model", params.paths.step("tasks"),
        params.paths.step("index") / "index.json", params.paths.step("split"), out_dir, decode=params.decode,
    )
    flat = flat_metrics(metrics)
    arts = [out_dir / n for n in ("metrics.json", "per_template.csv", "seq_templates.png")]
    baselines = params.paths.step("baselines") / "metrics.json"
    if baselines.exists():  # one table: ours next to SASRec-CE and popularity on the same split
        from lcrec.evaluate.table import write_table

        print(write_table(out_dir / "metrics.json", baselines, out_dir / "comparison.md"))
        arts.append(out_dir / "comparison.md")
    log_step("evaluate", params.tracking, params.paths, params=params.evaluate, metrics=flat, artifacts=arts)
    return flat
