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
from lcrec.steps import STEPS

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


# --------------------------------------------------------------------------------------------------- steps
def _step_command(step) -> None:
    """``lcrec <step>`` for one row of :data:`lcrec.steps.STEPS`: its options as flags, then the step function;
    the stats it returns are printed as JSON."""

    def add_args(p: argparse.ArgumentParser) -> None:
        for opt in step.options:
            kw = {"dest": opt.dest, "help": argparse.SUPPRESS if opt.launcher else opt.help}
            if opt.action:
                kw["action"] = opt.action
            else:
                kw.update(default=None, type=opt.type or str)
            p.add_argument(opt.flag, *opt.aliases, **kw)

    def run(params: Params, args: argparse.Namespace) -> None:
        from lcrec.steps import run as run_step

        knobs = [f"{o.knob}={getattr(args, o.dest)}" for o in step.options if o.knob and getattr(args, o.dest)]
        if knobs:
            params = load_params_from(params, knobs)
        _print_json(run_step(step.name, params, **{o.dest: getattr(args, o.dest) for o in step.options
                                                   if o.argument}))

    command(step.name, step.help, add_args)(run)


def load_params_from(params: Params, overrides: list[str]) -> Params:
    """``params`` with ``KEY=VALUE`` overrides applied (the same parser as ``--set``)."""
    from lcrec.config import apply_overrides, params_from_dict

    return params_from_dict(apply_overrides(params.to_dict(), overrides))


for _step in STEPS:
    _step_command(_step)


# --------------------------------------------------------------------------------------------------- serving
@command("serve", "Run the KServe predictor (v1 + v2 REST) for serve.model_uri on serve.host:serve.http_port.")
def _serve(params: Params, args: argparse.Namespace) -> None:
    from lcrec.serve.server import run_serve

    run_serve(params)


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
    from lcrec.kubeflow import compile as kfp_compile

    if args.action == "compile":
        _print_json(kfp_compile.compile_pipelines(params))
    elif args.action == "run-local":
        _print_json(kfp_compile.run_local(params, args.pipeline, pipeline_root=args.root,
                                          arguments=kfp_compile.parse_arguments(args.pipeline_args)))
    else:
        _print_json(kfp_compile.upload(params, args.host or params.pipeline.host, args.pipeline,
                                       experiment=params.tracking.experiment, schedule=not args.no_schedule))


# --------------------------------------------------------------------------------------------------- utilities
def _add_steps_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dvc-yaml", action="store_true", help="write dvc.yaml from the step table (in the current folder)")


@command("steps", "Show the step table (what each step reads and writes); --dvc-yaml regenerates dvc.yaml from it.",
         _add_steps_args)
def _steps(params: Params, args: argparse.Namespace) -> None:
    from pathlib import Path

    from lcrec import steps

    if args.dvc_yaml:
        Path("dvc.yaml").write_text(steps.dvc_yaml())
        print("wrote dvc.yaml")
        return
    for s in steps.STEPS:
        where = "pipeline" if s.stage else "on demand"
        writes = s.writes or "work/" + steps.folder(s.name)
        print(f"{s.name:<11} {where:<9} reads {', '.join(s.reads) or '-':<42} writes {writes}  params "
              f"{', '.join(s.params)}")


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
