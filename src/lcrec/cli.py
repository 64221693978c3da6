"""``lcrec <step>``: the command-line driver. Each command parses arguments, loads params and calls one
library function; no ML logic lives here. DVC stages call these commands.

Heavy libraries are imported inside the commands, so ``lcrec --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

from lcrec.config import ConfigError, Params, load_params

Command = Callable[[Params, argparse.Namespace], int | None]
COMMANDS: dict[str, tuple[str, Command, Callable[[argparse.ArgumentParser], None] | None]] = {}


def command(name: str, help: str, add_args: Callable[[argparse.ArgumentParser], None] | None = None):  # noqa: A002
    """Register ``fn(params, args)`` as ``lcrec <name>``."""

    def register(fn: Command) -> Command:
        COMMANDS[name] = (help, fn, add_args)
        return fn

    return register


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


# --------------------------------------------------------------------------------------------------- data
@command("ingest", "Read a raw dataset into interactions/items/users parquet files.")
def _ingest(params: Params, args: argparse.Namespace) -> None:
    from lcrec.data.ingest import run_ingest

    _print_json(run_ingest(params))


@command("validate", "Check the ingested tables with Great Expectations; exit 1 on failure.")
def _validate(params: Params, args: argparse.Namespace) -> int:
    from lcrec.validation.validate import DataValidationError, run_validate

    try:
        _print_json(run_validate(params))
    except DataValidationError as err:
        print(str(err), file=sys.stderr)
        return 1
    return 0


@command("features", "Write Feast sources, `feast apply` and materialize the online store.")
def _features(params: Params, args: argparse.Namespace) -> None:
    from lcrec.features.store import run_features

    _print_json(run_features(params))


@command("split", "k-core filter, chronological leave-one-out split, capped histories.")
def _split(params: Params, args: argparse.Namespace) -> None:
    from lcrec.split.leave_one_out import run_split

    _print_json(run_split(params))


@command("embed", "Encode item texts into work/embed/item_emb.npy (encoders: minilm, causal-lm).")
def _embed(params: Params, args: argparse.Namespace) -> None:
    from lcrec.embed.embed import run_embed

    _print_json(run_embed(params))


@command("quantize", "Train the RQ-VAE and write a collision-free item index (work/index/index.json + report).")
def _quantize(params: Params, args: argparse.Namespace) -> None:
    from lcrec.quantize.quantize import run_quantize

    _print_json(run_quantize(params))


def _add_index_add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--items", default=None, help="new items file (.parquet/.jsonl/.csv with item_id + text fields); "
                   "default: index_add.items")


@command("index-add", "Give new items codes with the frozen quantizer; writes a new index version, old codes unchanged.",
         _add_index_add_args)
def _index_add(params: Params, args: argparse.Namespace) -> None:
    from lcrec.quantize.incremental import run_index_add

    _print_json(run_index_add(params, args.items))


# --------------------------------------------------------------------------------------------------- serving
@command("serve", "Run the KServe predictor (v1 + v2 REST) for serve.model_uri on serve.host:serve.http_port.")
def _serve(params: Params, args: argparse.Namespace) -> None:
    from lcrec.serve.server import run_serve

    run_serve(params)


def _add_cache_topk_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--users", default=None, help="parquet/csv of users (user_id [, items]); default: work/split/sequences.parquet")


@command("cache-topk", "Precompute every user's top-K with the served model and push it to the Feast online store.",
         _add_cache_topk_args)
def _cache_topk(params: Params, args: argparse.Namespace) -> None:
    from lcrec.serve.cache import run_cache_topk

    _print_json(run_cache_topk(params, args.users))


def _add_reindex_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--items", default=None, help="new items (parquet/jsonl/csv: item_id, title, text, ...); default: index_add.items")
    p.add_argument("--embeddings", default=None, help=".npy with one embedding row per new item (skips the encoder)")


@command("reindex", "Add new items to the served index store (new version, atomic); running predictors pick it up.",
         _add_reindex_args)
def _reindex(params: Params, args: argparse.Namespace) -> None:
    from lcrec.serve.reindex import run_reindex

    _print_json(run_reindex(params, args.items, args.embeddings))


@command("tasks", "Build the alignment-tuning instruction datasets (SEQ, MUT, ASY, ITE, PER, NEG).")
def _tasks(params: Params, args: argparse.Namespace) -> int:
    from lcrec.tasks.tasks import run_tasks
    from lcrec.tasks.teachers import TeacherError

    try:
        _print_json(run_tasks(params))
    except (TeacherError, KeyError) as err:
        print(f"lcrec tasks: {err}", file=sys.stderr)
        return 1
    return 0


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in work/train/checkpoints (same data order, optimizer, RNG)")
    p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)  # deepspeed launcher


@command("train", "Alignment-tune the backbone on the tasks (LoRA or full; DeepSpeed optional; resumable).",
         _add_train_args)
def _train(params: Params, args: argparse.Namespace) -> None:
    from lcrec.train.train import run_train

    _print_json(run_train(params, resume=args.resume))


@command("register", "Register the trained model (+ index, metrics, data hash, commit) in MLflow; move @champion "
         "only if it beats the serving version.")
def _register(params: Params, args: argparse.Namespace) -> None:
    from lcrec.tracking.registry import run_register

    _print_json(run_register(params))


def _add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: the params file's setting)")


@command("evaluate", "Score the trained model: SEQ ranking per template (HR/NDCG), ITE, index->title; metrics.json + plot.",
         _add_device_arg)
def _evaluate(params: Params, args: argparse.Namespace) -> None:
    from lcrec.evaluate.evaluate import run_evaluate

    if args.device:
        params.evaluate.device = args.device
    _print_json(run_evaluate(params))


@command("baselines", "Popularity and SASRec (full-softmax CE) on the same split and protocol; work/baselines/metrics.json.",
         _add_device_arg)
def _baselines(params: Params, args: argparse.Namespace) -> None:
    from lcrec.baselines.baselines import run_baselines

    if args.device:
        params.baselines.sasrec.device = args.device
    results = run_baselines(params)
    _print_json({k: {s: v[s] for s in ("valid", "test") if s in v} if isinstance(v, dict) and "test" in v else v
                 for k, v in results.items()})


@command("ablation", "tasks -> train -> evaluate for cumulative task-family sets; writes work/ablation/ablation.md.")
def _ablation(params: Params, args: argparse.Namespace) -> None:
    from lcrec.evaluate.ablation import run_ablation

    _print_json(run_ablation(params))


def _add_pipeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["compile", "run-local", "upload"],
                   help="compile: pipelines/compiled/*.yaml + components/*.yaml + manifests/recurring-run-*.yaml; "
                   "run-local: run a compiled pipeline with kfp.local (SubprocessRunner); upload: to a KFP endpoint")
    p.add_argument("--pipeline", default="training", choices=["training", "reindex"], help="which pipeline")
    p.add_argument("--arg", dest="pipeline_args", action="append", default=[], metavar="NAME=VALUE",
                   help="pipeline argument for run-local (JSON values), e.g. --arg 'overrides=[\"train.max_steps=2\"]'")
    p.add_argument("--root", default="work/kfp_local", help="run-local: folder of the task outputs")
    p.add_argument("--host", default=None, help="upload: KFP API endpoint (default: pipeline.host)")
    p.add_argument("--no-schedule", action="store_true", help="upload: do not create the recurring run")


@command("pipeline", "Kubeflow Pipelines: compile the training and re-index pipelines, run one locally, upload.",
         _add_pipeline_args)
def _pipeline(params: Params, args: argparse.Namespace) -> None:
    from lcrec.pipelines import compile as kfp_compile

    if args.action == "compile":
        _print_json(kfp_compile.compile_pipelines(params))
    elif args.action == "run-local":
        _print_json(kfp_compile.run_local(params, args.pipeline, pipeline_root=args.root,
                                          arguments=kfp_compile.parse_arguments(args.pipeline_args)))
    else:
        _print_json(kfp_compile.upload(params, args.host or params.pipeline.host, args.pipeline,
                                       experiment=params.tracking.experiment, schedule=not args.no_schedule))


# --------------------------------------------------------------------------------------------------- utilities
def _add_params_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--defaults", action="store_true", help="print a params.yaml holding every default")


@command("params", "Show every setting with its current value and help text.", _add_params_args)
def _params(params: Params, args: argparse.Namespace) -> None:
    from lcrec.config import describe, dump_defaults

    if args.defaults:
        print(dump_defaults(), end="")
        return
    current = params.to_dict()
    for key, _default, help_text in describe():
        value = current
        for part in key.split("."):
            value = value[part]
        print(f"{key} = {value!r}\n    {help_text}")


def _add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--until", default=None, help="stop after this step (default: run every step that exists)")
    p.add_argument("--no-serve", action="store_true",
                   help="skip the serving part (predictor on 127.0.0.1, recommendations, live re-index)")
    p.add_argument("--reindex", default="pipeline", choices=["pipeline", "cli"],
                   help="how the serving part adds new items: the KFP re-index pipeline run with kfp.local "
                   "(default) or `lcrec reindex`")


@command("demo", "Run the pipeline end to end in one process, print a summary, then serve, recommend and re-index "
         "on 127.0.0.1.", _add_demo_args)
def _demo(params: Params, args: argparse.Namespace) -> None:
    from lcrec.demo import run_demo

    run_demo(params, until=args.until, serve=not args.no_serve, reindex=args.reindex)


# --------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lcrec", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="<step>")
    for name, (help_text, _fn, add_args) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        p.add_argument(
            "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
            help="override one setting, e.g. --set data.source=ml-1m (repeatable)",
        )
        if add_args:
            add_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("feast", "great_expectations", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.command:
        parser.print_help()
        return 0
    try:
        params = load_params(args.params, args.overrides)
    except ConfigError as err:
        print(f"lcrec {args.command}: bad configuration: {err}", file=sys.stderr)
        return 2
    _help, fn, _add = COMMANDS[args.command]
    try:
        rc = fn(params, args)
    except (FileNotFoundError, ValueError, ConfigError) as err:
        print(f"lcrec {args.command}: {err}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
