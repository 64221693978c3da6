"""Run one step of :data:`lcrec.steps.STEPS` inside a pipeline task, with its folders mapped onto the task's
artifacts.

How a KFP component's artifacts meet the library's work-dir layout: every step finds its folders through
``params.paths.step(name)``, which honours ``paths.dirs.<name>``. A component therefore turns each input
artifact (``Input[Dataset].path``, downloaded by the KFP launcher) and its output artifact
(``Output[Model].path``, uploaded after the task) into one override, ``paths.dirs.<folder>=<artifact path>``,
and calls the step function the CLI, DVC and the demo call, in-process, taking the stats it returns. Nothing is
copied; a step that would write into an input gets a copy first (``copy_inputs``). Everything else a step
writes goes to a throw-away ``paths.work_dir``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def step_overrides(inputs: Mapping[str, str], outputs: Mapping[str, str], work_dir: str,
                   tracking_uri: str = "") -> list[str]:
    """The ``--set`` overrides that point each step folder at its artifact path."""
    out = [f"paths.work_dir={work_dir}"]
    out += [f"paths.dirs.{name}={path}" for name, path in {**inputs, **outputs}.items()]
    if tracking_uri:
        out.append(f"tracking.uri={tracking_uri}")
    return out


def run_step(
    step: str,
    *,
    params_path: str = "",
    overrides: Sequence[str] = (),
    inputs: Mapping[str, str] | None = None,
    outputs: Mapping[str, str] | None = None,
    copy_inputs: Sequence[str] = (),
    tracking_uri: str = "",
    parent_run_id: str = "",
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run step ``step`` with ``inputs``/``outputs`` ({step folder name: path}) mapped in; return its stats.
    ``copy_inputs`` names inputs copied into the output folder of the same name first (``{"index": in}`` +
    ``{"index": out}``: the step updates a copy). The step's own errors propagate."""
    from lcrec.config import load_params
    from lcrec.steps import run

    inputs, outputs = dict(inputs or {}), dict(outputs or {})
    for name in copy_inputs:
        src, dst = Path(inputs.pop(name)), Path(outputs[name])
        shutil.copytree(src, dst, dirs_exist_ok=True)
    for path in outputs.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix=f"lcrec-{step}-")
    params = load_params(params_path or "params.yaml",
                         [*overrides, *step_overrides(inputs, outputs, work_dir, tracking_uri)])
    parent_run_id = parent_run_id or pipeline_parent_run(params)
    previous = os.environ.get("LCREC_PARENT_RUN_ID")
    if parent_run_id:
        os.environ["LCREC_PARENT_RUN_ID"] = parent_run_id
    log.info("lcrec %s: inputs %s, outputs %s", step, inputs, outputs)
    try:
        return run(step, params, **dict(options or {}))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)  # scratch only: every output the step hands on is mapped
        if parent_run_id:
            if previous is None:
                os.environ.pop("LCREC_PARENT_RUN_ID", None)
            else:
                os.environ["LCREC_PARENT_RUN_ID"] = previous


def pipeline_parent_run(params) -> str:
    """The MLflow parent run of the pipeline run this task belongs to, found by the KFP run id in
    ``$LCREC_KFP_RUN_ID`` ("" outside a pipeline, or with tracking off). A lookup, not a task input: an input
    that changes every run would make KFP's cache miss every time."""
    from lcrec.tracking import find_pipeline_run, pipeline_run_id, tracking_uri

    kfp_run_id = pipeline_run_id()
    if not kfp_run_id or not params.tracking.enabled:
        return ""
    return find_pipeline_run(tracking_uri(params.tracking, params.paths), kfp_run_id)


def artifact_folders(step: str, artifacts: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """A component's artifacts ({KFP artifact name: artifact}) -> (inputs, outputs) as {step folder: path},
    through the step table: each step the step reads is found under that step's artifact name."""
    from lcrec.steps import BY_NAME, folder

    s = BY_NAME[step]
    missing = [BY_NAME[r].output for r in s.reads if BY_NAME[r].output not in artifacts]
    if missing or s.output not in artifacts:
        raise TypeError(f"component {step!r} lacks the artifacts {missing or [s.output]} the step table names")
    inputs = {folder(r): artifacts[BY_NAME[r].output].path for r in s.reads}
    return inputs, {folder(step): artifacts[s.output].path}


def run_component(step: str, arguments: Mapping[str, Any], overrides: Sequence[str] = (),
                  options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The body of a step component: ``arguments`` are the component's own (``locals()``: params_path,
    overrides, tracking_uri, its artifacts and its ``metrics`` output); runs the step on the
    artifact folders, logs the numeric stats to ``metrics`` and returns the stats."""
    inputs, outputs = artifact_folders(step, arguments)
    stats = run_step(step, params_path=arguments["params_path"],
                     overrides=[*arguments["overrides"], *overrides], tracking_uri=arguments["tracking_uri"],
                     inputs=inputs, outputs=outputs, options=options)
    log_metrics(arguments.get("metrics"), stats)
    return stats


def log_metrics(metrics: Any, stats: Mapping[str, Any]) -> None:
    """Numeric stats onto a KFP ``Metrics`` artifact (none given: nothing)."""
    if metrics is None:
        return
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def numeric_metrics(stats: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Flat numeric values of a stats dict, for a KFP ``Metrics`` artifact."""
    out: dict[str, float] = {}
    for key, value in stats.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(numeric_metrics(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out
