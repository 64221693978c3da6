"""The one table of pipeline steps. Every driver reads it: the CLI makes one command per step, ``dvc.yaml`` is
generated from it (:func:`dvc_yaml`; a test checks the committed file equals a fresh generation), the KFP
training pipeline wires its components from it, and the demo and the ablation run its steps in its order.

A step is one library function ``fn(params, **options) -> stats`` over files: it reads the folders of the
steps named in ``reads`` (``params.paths.step(name)``), writes its own folder, and returns its statistics as a
typed dict (never through stdout). Importing this module imports no step module, no driver and no heavy
library; :func:`function` resolves a step's function when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lcrec.config import Params


@dataclass(frozen=True)
class Option:
    """A per-run option of a step (``lcrec <step> --flag``). By default it reaches the step function as
    ``dest=value``; an option with a ``knob`` sets that params knob instead (``--device`` -> ``evaluate.device``);
    a ``launcher`` option is set by a launcher (DeepSpeed's ``--local_rank``): accepted, hidden, never passed."""

    flag: str
    dest: str
    help: str
    action: str | None = None  # argparse action, e.g. "store_true"
    knob: str = ""
    aliases: tuple[str, ...] = ()
    launcher: bool = False
    type: type | None = None

    @property
    def argument(self) -> bool:
        """True when the option reaches the step function as an argument."""
        return not self.knob and not self.launcher


def device_option(knob: str) -> Option:
    return Option("--device", "device", f"auto | cpu | cuda (sets {knob}; default: the params file's setting)",
                  knob=knob)


@dataclass(frozen=True)
class Step:
    name: str
    target: str  # "module:function"; the function takes (Params, **options) and returns a stats dict
    help: str
    reads: tuple[str, ...] = ()  # step folders read (the producing steps' names)
    params: tuple[str, ...] = ()  # params.yaml sections (or dotted knobs) the step uses
    code: tuple[str, ...] = ()  # source folders/files whose change reruns the step (DVC deps)
    files: tuple[str, ...] = ()  # other repository files read (DVC deps)
    outs: tuple[str | tuple[str, dict], ...] = ()  # paths under the repo root it writes, (path, DVC options)
    metrics: tuple[str, ...] = ()
    plots: tuple[str | tuple[str, dict], ...] = ()  # images/folders, or (CSV, DVC plot options: x, y)
    exports: tuple[str, ...] = ()  # what a reader of this step depends on in DVC ("" = its outs not kept across runs)
    artifact: str = ""  # the KFP output artifact's name ("" = the step's name)
    options: tuple[Option, ...] = ()
    stage: bool = True  # part of the training pipeline (a DVC stage, a KFP training task, a demo step)
    gate: str = ""  # "promoted": on the cluster it runs only when register moved @champion to this run's model
    writes: str = ""  # what it writes when that is not a work folder (for `lcrec steps`)

    @property
    def output(self) -> str:
        return self.artifact or self.name


WORK = "work"
FEAST_FILES = ("item_features.parquet", "user_features.parquet", "user_topk.parquet", "registry.db")


def _w(*parts: str) -> str:
    return "/".join((WORK, *parts))


STEPS: tuple[Step, ...] = (
    Step("ingest", "lcrec.data.ingest:run_ingest", "Read a raw dataset into interactions/items/users parquet files.",
         params=("data",), code=("src/lcrec/data",), outs=(_w("data"),), artifact="data"),
    Step("validate", "lcrec.validation.validate:run_validate",
         "Check the ingested tables and the ingest account with Great Expectations; exit 1 on failure.",
         reads=("ingest",), params=("validate",), code=("src/lcrec/validation",), outs=(_w("validation"),),
         artifact="validation"),
    Step("split", "lcrec.split.leave_one_out:run_split",
         "k-core filter, chronological leave-one-out split, capped histories.",
         reads=("ingest", "validate"), params=("split",), code=("src/lcrec/split",),
         outs=tuple(_w("split", f"{n}.parquet") for n in ("items", "sequences", "train", "valid", "test")),
         metrics=(_w("split", "stats.json"),)),
    Step("embed", "lcrec.embed.embed:run_embed",
         "Encode items into work/embed/item_emb.npy (encoders: minilm, causal-lm, sasrec).",
         reads=("split",), params=("embed", "sasrec", "runtime"),
         code=("src/lcrec/embed", "src/lcrec/model/backbones.py", "src/lcrec/baselines/sasrec.py"),
         outs=(_w("embed"),), options=(device_option("embed.device"),)),
    Step("quantize", "lcrec.quantize.quantize:run_quantize",
         "Train the RQ-VAE and write a collision-free item index (work/index/index.json + report).",
         reads=("embed", "split"), params=("quantize", "runtime"), code=("src/lcrec/quantize",),
         outs=tuple(_w("index", n) for n in ("index.json", "index_meta.json", "quantizer.pt")),
         metrics=(_w("index", "report.json"),),
         plots=(_w("index", "code_usage.png"), _w("index", "training_loss.png")), artifact="index",
         options=(device_option("quantize.device"),)),
    Step("baselines", "lcrec.baselines.baselines:run_baselines",
         "Popularity and SASRec (full-softmax CE) on the same split and protocol; work/baselines/metrics.json and "
         "the SASRec-CE as the rank mode's candidate retriever.",
         reads=("split", "embed"), params=("baselines", "sasrec", "runtime"),
         code=("src/lcrec/baselines", "src/lcrec/evaluate/metrics.py"),
         outs=(_w("baselines", "sasrec_history.json"), _w("baselines", "retriever")),
         metrics=(_w("baselines", "metrics.json"),),
         plots=(_w("baselines", "sasrec_curve.png"), (_w("baselines", "sasrec_curve.csv"),
                                                       {"x": "epoch", "y": "valid_ndcg@10"})), options=(device_option("sasrec.device"),),
         exports=(_w("baselines", "sasrec_history.json"), _w("baselines", "metrics.json"),
                  _w("baselines", "retriever"))),
    Step("user-index", "lcrec.users.user_index:run_user_index",
         "User codes <ua_..><ub_..><uc_..>: each user's profile + training-history text (MiniLM) and SASRec-CE "
         "state -> collision-free RQ codes in a namespace of their own; versioned, published atomically.",
         reads=("ingest", "split", "baselines"), params=("user_index", "quantize", "runtime"),
         code=("src/lcrec/users",), outs=((_w("user_index"), {"persist": True}),), artifact="user_index"),
    Step("features", "lcrec.features.store:run_features",
         "Write Feast sources (item and user codes included), `feast apply` and materialize the online store.",
         reads=("ingest", "validate", "quantize", "user-index"), params=("features",), code=("src/lcrec/features",),
         files=("feature_repo/feature_store.yaml", "feature_repo/features.py"),
         # the sources and the registry; the online store (data/online_store.db here, Redis on a cluster) is a
         # live database the serving side writes too (cache rows, new items), not an artifact DVC can pin
         outs=tuple((f"feature_repo/data/{n}", {"persist": True}) for n in FEAST_FILES),
         exports=tuple(f"feature_repo/data/{n}" for n in FEAST_FILES), metrics=(_w("features", "stats.json"),)),
    Step("tasks", "lcrec.tasks.tasks:run_tasks",
         "Build the alignment-tuning instruction datasets (SEQ, SEQ-all, MUT, ASY, ITE, PER, NEG, RANK, USEQ, "
         "USER, UPREF).",
         reads=("ingest", "split", "quantize", "baselines", "user-index"), params=("tasks", "runtime"),
         code=("src/lcrec/tasks",),
         outs=(_w("tasks", "train.parquet"), _w("tasks", "valid.jsonl"), _w("tasks", "test_seq.jsonl"),
               _w("tasks", "test_ite.jsonl"), _w("tasks", "test_rank.jsonl"), _w("tasks", "valid_rank.jsonl"),
               _w("tasks", "test_user.jsonl"),
               _w("tasks", "test_rating.jsonl"), _w("tasks", "user_codes.json"),
               (_w("tasks", "teacher_cache.json"), {"persist": True}),
               (_w("tasks", "teacher_cache_test.json"), {"persist": True})),
         metrics=(_w("tasks", "mix.json"),)),
    Step("train", "lcrec.train.train:run_train",
         "Alignment-tune the backbone on the tasks (LoRA or full; DeepSpeed optional; resumable).",
         reads=("tasks", "quantize"), params=("train", "runtime"), code=("src/lcrec/train", "src/lcrec/model"),
         files=("configs/deepspeed",), outs=(_w("train", "model"), _w("train", "loss_history.json")),
         metrics=(_w("train", "train_metrics.json"),),
         plots=(_w("train", "plots"), (_w("train", "loss_train.csv"), {"x": "step", "y": "loss"}),
                (_w("train", "loss_valid.csv"), {"x": "step", "y": "eval_loss"})),
         exports=(_w("train", "model"),), artifact="model",
         options=(Option("--resume", "resume", "continue from the latest checkpoint in work/train/checkpoints "
                         "(same data order, optimizer, RNG)", "store_true"),
                  Option("--local_rank", "local_rank", "set by the deepspeed launcher", aliases=("--local-rank",),
                         launcher=True, type=int))),
    Step("evaluate", "lcrec.evaluate.evaluate:run_evaluate",
         "Score the trained model: SEQ ranking per template (HR/NDCG), ITE, index->title; metrics.json + plot.",
         reads=("train", "tasks", "quantize", "split", "baselines"),
         params=("evaluate", "decode", "runtime"),
         code=("src/lcrec/evaluate", "src/lcrec/decode"),
         outs=(_w("evaluate", "recommendations.jsonl"), _w("evaluate", "ranks.jsonl"), _w("evaluate", "per_template.csv"),
               _w("evaluate", "comparison.md")),
         metrics=(_w("evaluate", "metrics.json"),), plots=(_w("evaluate", "seq_templates.png"),),
         exports=(_w("evaluate", "metrics.json"),), artifact="evaluation",
         options=(device_option("evaluate.device"),)),
    Step("register", "lcrec.tracking.registry:run_register",
         "Register the trained model (+ index, metrics, data hash, commit) in MLflow; move @champion only if it "
         "beats the serving version.",
         reads=("train", "quantize", "ingest", "split", "evaluate", "baselines"), params=("register",),
         code=("src/lcrec/tracking/registry.py",), outs=((_w("register", "registered.json"), {"cache": False}),),
         artifact="registration"),
    Step("cache-topk", "lcrec.serve.cache:run_cache_topk",
         "Bring every user's precomputed top-K (Feast online store) up to date with the served model and index: "
         "rows kept, merged with a re-index's new items, or decoded again.",
         reads=("train", "quantize", "split", "features", "register"), params=("serve", "decode", "runtime"),
         code=("src/lcrec/serve/cache.py", "src/lcrec/serve/recommend.py", "src/lcrec/decode"),
         metrics=(_w("cache-topk", "stats.json"),), artifact="cache", gate="promoted",
         options=(Option("--users", "users_path", "parquet/csv of users (user_id [, items]); default: "
                         "work/split/sequences.parquet"),
                  Option("--full", "full", "recompute every row (default: only what changed)", "store_true"))),
    # serving-side steps: commands of their own, run on demand or by the re-index pipeline
    Step("index-add", "lcrec.quantize.incremental:run_index_add",
         "Give new items codes with the frozen quantizer; writes a new index version, old codes unchanged.",
         reads=("quantize",), params=("index_add",), stage=False,
         options=(Option("--items", "items_path", "new items file (.parquet/.jsonl/.csv with item_id + text "
                         "fields); default: index_add.items"),)),
    Step("user-add", "lcrec.users.user_index:run_user_add",
         "Give new users codes with the frozen user quantizer; a new user-index version, old codes unchanged.",
         reads=("split", "baselines", "user-index"), params=("user_index", "runtime"), stage=False,
         options=(Option("--users", "users_path", "new users (.jsonl/.json/.parquet: user_id, optional profile "
                         "columns, optional history = item ids oldest first)"),)),
    Step("reindex", "lcrec.serve.reindex:run_reindex",
         "Add new items to the served index store (new version, atomic); running predictors pick it up.",
         params=("serve", "index_add", "runtime"), stage=False, writes="serving index store (serve.index_dir)",
         options=(Option("--items", "items_path", "new items (parquet/jsonl/csv: item_id, title, text, ...); "
                         "default: index_add.items"),
                  Option("--embeddings", "embeddings_path", ".npy with one embedding row per new item (skips "
                         "the encoder)"))),
)

BY_NAME: dict[str, Step] = {s.name: s for s in STEPS}
# the folder a step writes, where it is not named after the step (``paths.dirs`` keys, ``work/<folder>``)
FOLDER = {"ingest": "data", "validate": "validation", "quantize": "index", "index-add": "index",
          "user-index": "user_index", "user-add": "user_index"}


def pipeline_steps() -> list[Step]:
    """The training pipeline's steps, in the order every driver runs them."""
    return [s for s in STEPS if s.stage]


def step(name: str) -> Step:
    if name not in BY_NAME:
        raise KeyError(f"{name!r} is not a step; steps are: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def folder(name: str) -> str:
    """The ``paths.dirs`` key of a step's folder (``ingest`` -> ``data``, ``quantize`` -> ``index``); a step
    writing elsewhere says what in ``Step.writes``."""
    return FOLDER.get(name, name)


def function(name: str) -> Callable[..., dict[str, Any]]:
    module, fn = step(name).target.split(":")
    return getattr(importlib.import_module(module), fn)


def run(name: str, params: Params, **options: Any) -> dict[str, Any]:
    """Run one step with ``params`` (and its options, e.g. ``resume=True``); return its stats."""
    known = {o.dest for o in step(name).options if o.argument}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"step {name!r} has no option {sorted(unknown)}; its options are {sorted(known) or 'none'}")
    return function(name)(params, **{k: v for k, v in options.items() if v is not None})


# --------------------------------------------------------------------------------------------------- dvc.yaml
def _out_path(out: str | tuple[str, dict]) -> str:
    return out if isinstance(out, str) else out[0]


def _dvc_entry(out: str | tuple[str, dict]) -> Any:
    return out if isinstance(out, str) else {out[0]: dict(out[1])}


def dvc_stages() -> dict[str, dict[str, Any]]:
    """``stages:`` of dvc.yaml: per pipeline step its command, code + upstream outputs as deps, params, outs,
    metrics and plots. Metrics and plots are cached like any output: work/ is not in git, so the DVC cache (and
    remote), addressed by the committed dvc.lock, is where `dvc metrics diff` / `dvc plots diff` find another
    revision's values."""
    produced = {s.name: list(s.exports) or [_out_path(o) for o in s.outs if isinstance(o, str)]
                for s in pipeline_steps()}
    stages: dict[str, dict[str, Any]] = {}
    for s in pipeline_steps():
        deps = list(s.code) + list(s.files)
        for r in s.reads:
            if r not in produced:
                raise ValueError(f"step {s.name!r} reads {r!r}, which no earlier pipeline step writes")
            deps += [p for p in produced[r] if p not in deps]
        stage: dict[str, Any] = {"cmd": f"lcrec {s.name}", "deps": deps}
        if s.params:
            stage["params"] = list(s.params)
        if s.outs:
            stage["outs"] = [_dvc_entry(o) for o in s.outs]
        if s.metrics:
            stage["metrics"] = list(s.metrics)
        if s.plots:
            stage["plots"] = [p if isinstance(p, str) else {p[0]: dict(p[1])} for p in s.plots]
        stages[s.name] = stage
    return stages


DVC_HEADER = ("# Generated from src/lcrec/steps.py by `lcrec steps --dvc-yaml` - edit the table, not this file.\n"
              "# Each stage calls the same step function the KFP component, the demo and the CLI call.\n"
              "# `dvc repro` reruns only the stages whose code, inputs or params changed.\n")


def dvc_yaml() -> str:
    import yaml

    return DVC_HEADER + yaml.safe_dump({"stages": dvc_stages()}, sort_keys=False, width=120)


def check_order() -> None:
    """Every step reads only what an earlier step wrote (the table is a valid run order)."""
    seen: set[str] = set()
    for s in pipeline_steps():
        missing = [r for r in s.reads if r not in seen]
        if missing:
            raise ValueError(f"step {s.name!r} reads {missing} before they are written; reorder STEPS")
        seen.add(s.name)


def wiring(produced: Mapping[str, Any]) -> Callable[[Step], dict[str, Any]]:
    """For a pipeline driver: ``wiring(outputs)(step)`` -> ``{input artifact name: output}`` of its reads, where
    ``outputs`` maps step names to what the driver got from them (e.g. KFP output artifacts)."""

    def inputs(s: Step) -> dict[str, Any]:
        return {BY_NAME[r].output: produced[r] for r in s.reads}

    return inputs
