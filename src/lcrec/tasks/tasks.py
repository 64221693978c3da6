"""The ``tasks`` step: split + item codes (+ ratings/reviews) -> instruction datasets.

Writes into ``out_dir`` (``work/tasks``):
- ``train.parquet`` (or ``.jsonl``): rows of every enabled family for every epoch (column ``epoch``);
- ``valid.jsonl``: next-item rows over ``valid.parquet`` (``tasks.valid_templates`` wordings per user, of the SEQ
  pool and/or the SEQ-all pool, whichever families are enabled);
- ``test_seq.jsonl``: next-item rows over ``test.parquet`` for every template of those pools (evaluation
  averages over them); valid and test rows hold the whole prompt in ``instruction`` and the code in ``response``;
- ``test_ite.jsonl``: with the ITE family on, an intention about each test user's test item -> its code (the
  evaluate step scores these; empty otherwise), the teacher's texts for them in ``teacher_cache_test.json``;
- ``test_rank.jsonl``: with the rank family on, each test user's rank prompt: the retriever's candidates in its
  order (``candidates``) with its scores for them (``retriever_scores``), the letter of the target in ``response``
  ("" when the retriever missed it); empty otherwise;
- ``valid_rank.jsonl``: the same for the valid split (the valid item is the target; the history holds training
  items only): where the evaluate step chooses the rank mode's retriever weight; empty without the rank family;
- ``test_user.jsonl``: with the user family on, each test user's user-prediction prompt: the test item and its
  latest training choosers -> the test user's code (``response``); empty otherwise;
- ``test_rating.jsonl``: with the user family on, each test user's rating prompt -> the stars of the test item, with
  the user's mean training rating (``user_mean``, the baseline); empty otherwise;
- ``user_codes.json``: the user codes the rows use (``{"codes": {user: code}, "num_levels", "codebook_size",
  "token_prefix", "version"}``; no codes without a user family): the train step adds their tokens and ships the
  file with the model, so serving names the user the way training did;
- ``teacher_cache.json``: the teacher's texts (reused by the next run while their inputs are unchanged);
- ``mix.json``: the task mix (examples built, kept after caps, rows, shares, drops) per split.

Only training data feeds the training rows: intentions are about training targets, preferences come from
training items; valid/test items enter only as items a negative must avoid (and as the targets of the test
prompts).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from lcrec.config import Params, TasksConfig
from lcrec.split.readers import SplitRow, read_split_rows, read_split_table, training_items
from lcrec.tasks.context import Intention, ItemInfo, TaskContext, TaskExample
from lcrec.tasks.dataset import TaskMix, apply_caps, every_template_rows, sample_rows, write_jsonl, write_rows
from lcrec.tasks.registry import FAMILIES, family_of, get_family
from lcrec.tasks.seq import seq_example
from lcrec.tasks.teachers import ItemView, TeacherCache, TeacherRequest, ask_teacher
from lcrec.tasks.templates import NEXT_ITEM_POOLS

log = logging.getLogger(__name__)

TRAIN_FORMATS = ("parquet", "jsonl")


# --------------------------------------------------------------------------------------------------- inputs
def load_index(index_path: Path) -> dict[str, str]:
    """index.json -> item id -> code string (:func:`lcrec.quantize.index_file.read_code_strings`)."""
    from lcrec.quantize.index_file import read_code_strings

    return read_code_strings(index_path)


def load_items(split_dir: Path) -> dict[str, ItemInfo]:
    import pandas as pd

    df = read_split_table(split_dir, "items")
    cols = {c: df[c] if c in df.columns else [""] * len(df) for c in ("title", "description", "categories", "brand")}
    years = df["year"] if "year" in df.columns else [None] * len(df)
    items = {}
    for item, title, desc, cats, brand, year in zip(df["item_id"], cols["title"], cols["description"],
                                                    cols["categories"], cols["brand"], years, strict=True):
        y = None if pd.isna(year) or str(year).strip() == "" else int(float(year))
        items[str(item)] = ItemInfo.from_row(str(item), str(title or ""), str(desc or ""), str(cats or ""),
                                             str(brand or ""), y)
    return items


def load_feedback(data_dir: Path | None, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[float | None, str]]:
    """(user, item) -> (rating, review) for the given pairs, from ``interactions.parquet`` (latest event wins)."""
    if data_dir is None or not (Path(data_dir) / "interactions.parquet").exists():
        return {}
    import pandas as pd

    df = pd.read_parquet(Path(data_dir) / "interactions.parquet")
    if "timestamp" in df.columns:
        df = df.sort_values("timestamp", kind="stable")
    ratings = df["rating"] if "rating" in df.columns else [float("nan")] * len(df)
    reviews = df["review"] if "review" in df.columns else [""] * len(df)
    out = {}
    for u, i, r, text in zip(df["user_id"].astype(str), df["item_id"].astype(str), ratings, reviews, strict=True):
        if (u, i) in pairs:
            out[(u, i)] = (None if pd.isna(r) else float(r), "" if pd.isna(text) else str(text))
    return out


def known_items(train_items: dict[str, list[str]], *parts: list[SplitRow]) -> dict[str, set[str]]:
    """Every item of each user: training items plus the histories and targets of the given split rows (what a
    negative must avoid)."""
    known: dict[str, set[str]] = defaultdict(set)
    for u, items in train_items.items():
        known[u].update(items)
    for rows in parts:
        for r in rows:
            known[r.user_id].update(r.history)
            known[r.user_id].add(r.target)
    return dict(known)


def load_context(split_dir: Path, index_path: Path, max_history: int = 20, seed: int = 2024
                 ) -> tuple[TaskContext, list[SplitRow], list[SplitRow]]:
    """The builders' context over a split and an index (training data only), and the valid and test rows."""
    codes = load_index(index_path)
    train, valid, test = (read_split_rows(split_dir, part) for part in ("train", "valid", "test"))
    train_items = training_items(split_dir, valid, test)
    ctx = TaskContext(items=load_items(split_dir), codes=codes, train=train,
                      train_items=train_items, known_items=known_items(train_items, train, valid, test),
                      max_history=max_history, seed=seed)
    return ctx, valid, test


USER_FAMILIES = ("useq", "user", "upref")  # the families that read the user-index step's codes
USER_CODES = "user_codes.json"  # the user codes the rows use; the train step ships it beside the model


def load_user_codes(user_index_dir: Path | None) -> tuple[dict[str, str], dict[str, Any]]:
    """The published user index (``work/user_index``): user -> code string, and the facts the train step needs
    (levels, codebook size, prefix, version)."""
    from lcrec.users.user_index import read_published_index

    if user_index_dir is None or not Path(user_index_dir).exists():
        raise FileNotFoundError(f"{user_index_dir}: no user index; the user families ({', '.join(USER_FAMILIES)}) "
                                "need one: run `lcrec user-index` first, or drop them from tasks.families")
    index = read_published_index(user_index_dir)
    codes = dict(zip(index.item_ids, index.code_strings(), strict=True))
    info = {"num_levels": index.num_levels, "codebook_size": index.codebook_size, "token_prefix": index.prefix,
            "version": index.version}
    return codes, info


def item_choosers(train_items: dict[str, list[str]], data_dir: Path | None) -> dict[str, list[str]]:
    """Each item's training users, earliest first: by the interaction's timestamp in ``interactions.parquet``
    (the latest event of a (user, item) pair), or by user id when there are no timestamps."""
    pairs = {(u, i) for u, items in train_items.items() for i in items}
    when: dict[tuple[str, str], float] = {}
    if data_dir is not None and (Path(data_dir) / "interactions.parquet").exists():
        import pandas as pd

        df = pd.read_parquet(Path(data_dir) / "interactions.parquet")
        if "timestamp" in df.columns:
            stamps = pd.to_numeric(df["timestamp"], errors="coerce").fillna(0.0)
            for u, i, t in zip(df["user_id"].astype(str), df["item_id"].astype(str), stamps, strict=True):
                if (u, i) in pairs:
                    when[(u, i)] = float(t)
    out: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for u, i in pairs:
        out[i].append((when.get((u, i), 0.0), u))
    return {i: [u for _, u in sorted(users)] for i, users in out.items()}


# --------------------------------------------------------------------------------------------------- teacher texts
def item_view(ctx: TaskContext, feedback: dict, user: str, item: str) -> ItemView:
    """An item as the teacher sees it for one user: its text plus the user's rating and review."""
    return ItemView.of(ctx.info(item), *feedback.get((user, item), (None, "")))


def intention_request(ctx: TaskContext, feedback: dict, row: SplitRow) -> TeacherRequest:
    """The request for the intention behind ``row.target``, given the (capped) history before it."""
    views = tuple(item_view(ctx, feedback, row.user_id, i) for i in ctx.recent(row.history))
    return TeacherRequest("intention", row.user_id, views, item_view(ctx, feedback, row.user_id, row.target))


def preference_requests(ctx: TaskContext, feedback: dict, min_items: int = 1) -> list[TeacherRequest]:
    """One request per user, over the user's training items only."""
    out = []
    for user, items in ctx.train_items.items():
        if len(items) < max(min_items, 1):
            continue
        out.append(TeacherRequest("preference", user, tuple(item_view(ctx, feedback, user, i) for i in items)))
    return out


def intention_requests(ctx: TaskContext, feedback: dict, per_user: int = 1) -> list[tuple[SplitRow, TeacherRequest]]:
    """Requests about each user's last ``per_user`` training targets (never a valid/test item), with the
    history before them."""
    by_user: dict[str, list[SplitRow]] = defaultdict(list)
    for r in ctx.train:
        by_user[r.user_id].append(r)
    out = []
    for rows in by_user.values():
        for r in rows[-per_user:] if per_user > 0 else []:
            out.append((r, intention_request(ctx, feedback, r)))
    return out


def fill_teacher_texts(cfg: TasksConfig, ctx: TaskContext, needs: set[str], data_dir: Path | None,
                       cache_path: Path) -> dict[str, int]:
    """Ask the teacher (or the cache) for the texts the enabled families need; store them in ``ctx``.

    The cache file exists after every run (DVC declares it as an output): without a teacher family it is left
    as it was, or written empty, so a later run with ITE/PER still finds the texts of an earlier one."""
    if not needs:
        if not Path(cache_path).exists():
            TeacherCache().save(cache_path)
        return {"requests": 0, "cache_hits": 0, "generated": 0}
    pairs = {(u, i) for u, items in ctx.train_items.items() for i in items}
    feedback = load_feedback(data_dir, pairs)
    pref = preference_requests(ctx, feedback, cfg.per.min_items) if "preference" in needs else []
    inte = intention_requests(ctx, feedback, cfg.ite.per_user) if "intention" in needs else []
    texts, stats = ask_teacher(cfg.teacher, [*pref, *[req for _, req in inte]], cache_path)
    for req, text in zip(pref, texts[: len(pref)], strict=True):
        ctx.preferences[req.user_id] = text
    for (row, req), text in zip(inte, texts[len(pref):], strict=True):
        ctx.intentions.setdefault(req.user_id, []).append(Intention(req.user_id, row.history, row.target, text))
    return stats


def ite_test_rows(cfg: TasksConfig, ctx: TaskContext, test: list[SplitRow], data_dir: Path | None,
                  cache_path: Path) -> list[dict[str, Any]]:
    """Test-time ITE prompts: the teacher's intention about each test user's test item -> its code (first
    template of each pool; prompts that would show the target's code or title are left out)."""
    from lcrec.tasks.context import leaks
    from lcrec.tasks.dataset import render_row
    from lcrec.tasks.ite import intention_examples
    from lcrec.tasks.templates import pool

    rows = [r for r in test if r.history]
    feedback = load_feedback(data_dir, {(r.user_id, i) for r in rows for i in (*r.history, r.target)})
    texts, _ = ask_teacher(cfg.teacher, [intention_request(ctx, feedback, r) for r in rows], cache_path)
    out = []
    for r, text in zip(rows, texts, strict=True):
        for ex in intention_examples(cfg.ite, ctx, r.user_id, r.history, r.target, text):
            row = render_row(ex, pool(ex.task)[0], 0)
            if leaks(row["instruction"], ex.forbidden) is None:
                out.append(row)
    return out


# --------------------------------------------------------------------------------------------------- RANK
def open_retriever(cfg: TasksConfig, retriever_dir: Path | None) -> object | None:
    """The baselines step's retriever when the rank family is on and one was written, else None."""
    from lcrec.baselines.retriever import Retriever, has_retriever

    if "rank" not in cfg.families or not has_retriever(retriever_dir):
        return None
    return Retriever.load(retriever_dir)


def rank_eval_rows(cfg: TasksConfig, ctx: TaskContext, split_rows: list[SplitRow]) -> list[dict[str, Any]]:
    """Each valid or test user's rank prompt over the retriever's top ``tasks.rank.candidates`` (in its order, with
    its scores; history items not masked, as the generative protocol); the target's letter, or "" when it was
    not retrieved."""
    from lcrec.decode.letters import candidate_letters
    from lcrec.tasks.rank import RANK_TEMPLATE, rank_prompt

    rows = [r for r in split_rows if r.history]
    if ctx.retriever is None or not rows:
        return []
    letters = candidate_letters(cfg.rank.candidates)
    found = ctx.retriever.top([r.history for r in rows], cfg.rank.candidates, allowed=set(ctx.codes))
    out = []
    for r, items in zip(rows, found, strict=True):
        cands = [i for i, _ in items]
        history = [ctx.code(i) for i in ctx.recent(r.history)]
        out.append({"task": "rank", "template": RANK_TEMPLATE, "epoch": 0, "user_id": r.user_id,
                    "target_item": r.target, "instruction": rank_prompt(history, [ctx.code(c) for c in cands]),
                    "response": letters[cands.index(r.target)] if r.target in cands else "", "candidates": cands,
                    "retriever_scores": [round(float(v), 6) for _, v in items]})
    return out


# --------------------------------------------------------------------------------------------------- USER
def user_test_rows(cfg: TasksConfig, ctx: TaskContext, test: list[SplitRow]) -> list[dict[str, Any]]:
    """Each test user's user-prediction prompt (first template): the test item and its latest training choosers
    (other users) -> the test user's code. Users without a code, and items nobody chose in training, are left out."""
    from lcrec.tasks.dataset import render_row
    from lcrec.tasks.templates import pool
    from lcrec.tasks.user import choosers_example, distinct_choosers

    out = []
    n = cfg.user.choosers
    for r in test:
        if not ctx.user_code(r.user_id) or r.target not in ctx.codes:
            continue
        before = [u for u in distinct_choosers(ctx, r.target) if u != r.user_id]
        before = before[-n:] if n > 0 else before
        if before:
            out.append(render_row(choosers_example(ctx, r.target, before, r.user_id), pool("user.predict")[0], 0))
    return out


def rating_test_rows(cfg: TasksConfig, ctx: TaskContext, test: list[SplitRow], data_dir: Path | None
                     ) -> list[dict[str, Any]]:
    """Each test user's rating prompt (first template): the user's code and rated history -> the stars of the
    test item; ``user_mean`` is the user's mean training rating (the baseline), ``rating`` the true one."""
    import dataclasses
    from statistics import fmean

    from lcrec.tasks.dataset import render_row
    from lcrec.tasks.templates import pool
    from lcrec.tasks.user import rating_example

    feedback = load_feedback(data_dir, {(r.user_id, i) for r in test for i in (*r.history, r.target)})
    ratings = {**ctx.ratings, **{k: v for k, (v, _) in feedback.items() if v is not None}}
    full = dataclasses.replace(ctx, ratings=ratings)
    by_user: dict[str, list[float]] = defaultdict(list)
    for (u, _), v in ctx.ratings.items():
        by_user[u].append(v)
    known = [v for vs in by_user.values() for v in vs]
    overall = fmean(known) if known else 3.0
    out = []
    for r in test:
        rating = ratings.get((r.user_id, r.target))
        if rating is None or r.target not in ctx.codes:
            continue
        ex = rating_example(full, cfg.user, r.user_id, ctx.recent(r.history), r.target, rating)
        if ex is None:
            continue
        row = render_row(ex, pool("user.rating")[0], 0)
        mean = fmean(by_user[r.user_id]) if by_user.get(r.user_id) else overall
        out.append({**row, "rating": float(rating), "user_mean": round(mean, 4)})
    return out


def write_user_codes(path: Path, codes: dict[str, str], info: dict[str, Any]) -> None:
    path.write_text(json.dumps({**info, "codes": codes}))


def read_user_codes_file(path: str | Path) -> dict[str, Any]:
    """``user_codes.json`` (tasks step, copied beside a trained model); empty codes when absent."""
    path = Path(path)
    if not path.exists():
        return {"codes": {}}
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------------- the step
def next_item_tasks(families: list[str]) -> list[str]:
    """The next-item template pools to write valid/test prompts for: those of the enabled families (seq,
    seqall), or seq when neither is enabled (evaluation always scores next-item prediction)."""
    return [t for t in NEXT_ITEM_POOLS if t in families] or ["seq"]


def next_item_examples(ctx: TaskContext, rows: list[SplitRow], task: str) -> list[TaskExample]:
    """The valid/test next-item examples of ``task``'s pool; ``useq`` rows also name the user (users without a
    code are left out of that pool only)."""
    from lcrec.tasks.useq import with_user

    out = [seq_example(ctx, r.user_id, r.history, r.target, task) for r in rows if r.history]
    if task == "useq":
        out = [ex for ex in (with_user(ctx, e) for e in out) if ex is not None]
    return out


def _check(cfg: TasksConfig) -> None:
    if cfg.train_format not in TRAIN_FORMATS:
        raise ValueError(f"tasks.train_format is {cfg.train_format!r}; use one of {', '.join(TRAIN_FORMATS)}")
    for name in cfg.families:
        get_family(name)
    known = set(FAMILIES) | {t for f in FAMILIES.values() for t in f.tasks}
    bad = sorted(set(cfg.caps) - known)
    if bad:
        raise ValueError(f"tasks.caps names unknown task(s) {', '.join(bad)}; use a family ({', '.join(FAMILIES)}) "
                         f"or a task name ({', '.join(sorted(known - set(FAMILIES)))})")
    bad = sorted(set(cfg.task_epochs) - known)
    if bad:
        raise ValueError(f"tasks.task_epochs names unknown task(s) {', '.join(bad)}; use a family "
                         f"({', '.join(FAMILIES)}) or a task name such as mut.index2item")


def build_tasks(cfg: TasksConfig, split_dir: Path, index_path: Path, out_dir: Path,
                data_dir: Path | None = None, retriever_dir: Path | None = None,
                user_index_dir: Path | None = None) -> dict[str, Any]:
    """Build every enabled task family and write train/valid/test rows, the teacher cache and the mix.
    ``retriever_dir``: the baselines step's retriever, read by the rank family; ``user_index_dir``: the
    user-index step's output, read by the user families."""
    _check(cfg)
    split_dir, out_dir = Path(split_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx, valid, test = load_context(split_dir, index_path, cfg.max_history, cfg.seed)
    ctx.retriever = open_retriever(cfg, retriever_dir)
    user_info: dict[str, Any] = {}
    if any(f in USER_FAMILIES for f in cfg.families):
        ctx.user_codes, user_info = load_user_codes(user_index_dir)
    if "user" in cfg.families:
        pairs = {(u, i) for u, items in ctx.train_items.items() for i in items}
        ctx.ratings = {k: v for k, (v, _) in load_feedback(data_dir, pairs).items() if v is not None}
        ctx.item_choosers = item_choosers(ctx.train_items, data_dir)

    families = [get_family(name) for name in dict.fromkeys(cfg.families)]
    needs = {n for f in families for n in f.needs}
    teacher_stats = fill_teacher_texts(cfg, ctx, needs, data_dir, out_dir / "teacher_cache.json")

    mix = TaskMix()
    examples: dict[str, list[TaskExample]] = {}
    for family in sorted(families, key=lambda f: f.per_positive):  # families sized from positives come last
        if family.per_positive:
            ctx.positives = sum(len(examples[t]) for f in families if f.positive for t in f.tasks)
        for task in family.tasks:
            examples.setdefault(task, [])
        for ex in family.build(getattr(cfg, family.name), ctx):
            if family_of(ex.task) != family.name:
                raise ValueError(f"family {family.name} built an example of task {ex.task}")
            examples.setdefault(ex.task, []).append(ex)
    for task, exs in examples.items():
        mix.built[task] += len(exs)
    kept = apply_caps(examples, cfg.caps, cfg.seed, mix)

    train_path = out_dir / f"train.{cfg.train_format}"
    n_train = write_rows(sample_rows(kept, cfg.epochs, cfg.templates_per_example, cfg.seed, mix,
                                     task_epochs=cfg.task_epochs), train_path)

    valid_mix, test_mix = TaskMix(), TaskMix()
    scored = next_item_tasks(cfg.families)
    valid_ex = {task: next_item_examples(ctx, valid, task) for task in scored}
    for task, exs in valid_ex.items():
        valid_mix.built[task] = valid_mix.kept[task] = len(exs)
    n_valid = write_jsonl(sample_rows(valid_ex, 1, cfg.valid_templates, cfg.seed + 1, valid_mix, scored=True),
                          out_dir / "valid.jsonl")
    test_ex = [ex for task in scored for ex in next_item_examples(ctx, test, task)]
    for ex in test_ex:
        test_mix.built[ex.task] += 1
        test_mix.kept[ex.task] += 1
    n_test = write_jsonl(every_template_rows(test_ex, test_mix), out_dir / "test_seq.jsonl")
    test_cache = out_dir / "teacher_cache_test.json"
    ite = ite_test_rows(cfg, ctx, test, data_dir, test_cache) if "ite" in cfg.families else []
    if not test_cache.exists():
        TeacherCache().save(test_cache)  # a DVC output like teacher_cache.json: present after every run
    n_ite = write_jsonl(ite, out_dir / "test_ite.jsonl")  # always written (empty without ITE): a DVC output
    n_rank = write_jsonl(rank_eval_rows(cfg, ctx, test), out_dir / "test_rank.jsonl")  # likewise
    write_jsonl(rank_eval_rows(cfg, ctx, valid), out_dir / "valid_rank.jsonl")
    users_on = "user" in cfg.families
    n_user = write_jsonl(user_test_rows(cfg, ctx, test) if users_on and cfg.user.predict else [],
                         out_dir / "test_user.jsonl")
    n_rating = write_jsonl(rating_test_rows(cfg, ctx, test, data_dir) if users_on and cfg.user.rating else [],
                           out_dir / "test_rating.jsonl")
    write_user_codes(out_dir / USER_CODES, ctx.user_codes, user_info)

    summary = {
        "families": [f.name for f in families], "epochs": cfg.epochs, "seed": cfg.seed,
        "teacher": cfg.teacher.name, "teacher_texts": teacher_stats,
        "train": mix.to_dict(), "valid": valid_mix.to_dict(), "test_seq": test_mix.to_dict(),
    }
    (out_dir / "mix.json").write_text(json.dumps(summary, indent=2))
    for split, m in (("train", mix), ("valid", valid_mix), ("test", test_mix)):
        for task, n in sorted(m.leaked.items()):
            log.warning("tasks: dropped %d %s %s row(s) whose prompt contained the target's code or title (e.g. "
                        "two catalogue items share a title); see mix.json", n, split, task)
    log.info("tasks: %d train rows (%d epochs), %d valid rows, %d test rows -> %s", n_train, cfg.epochs, n_valid,
             n_test, out_dir)
    return {
        "train_rows": n_train, "valid_rows": n_valid, "test_rows": n_test, "test_ite_rows": n_ite, "test_rank_rows": n_rank,
        "test_user_rows": n_user, "test_rating_rows": n_rating, "user_codes": len(ctx.user_codes),
        "teacher_generated": teacher_stats["generated"], "teacher_cache_hits": teacher_stats["cache_hits"],
        "train_file": str(train_path), **mix.metrics("train."),
    }


def run_tasks(params: Params) -> dict[str, Any]:
    """``lcrec tasks``: read work/split, work/index/index.json, work/data, (for the rank family) the retriever
    in work/baselines and (for the user families) work/user_index; write work/tasks; log to MLflow."""
    from lcrec.baselines.retriever import RETRIEVER_DIR
    from lcrec.tracking import log_step

    out_dir = params.paths.step("tasks")
    data_dir = params.paths.step("data")
    stats = build_tasks(params.tasks, params.paths.step("split"), params.paths.step("index") / "index.json", out_dir,
                        data_dir if data_dir.exists() else None, params.paths.step("baselines") / RETRIEVER_DIR,
                        params.paths.step("user_index"))
    log_step("tasks", params.tracking, params.paths, params=params.tasks, metrics=stats,
             artifacts=[out_dir / "mix.json", out_dir / "teacher_cache.json"])
    return stats
