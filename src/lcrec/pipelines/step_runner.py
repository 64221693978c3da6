"""Run one ``lcrec <step>`` inside a pipeline task, with its folders mapped onto the task's artifacts.

How a KFP component's artifacts meet the library's work-dir layout: every step finds its folders through
``params.paths.step(name)``, which honours ``paths.dirs.<name>``. A component therefore turns each input
artifact (``Input[Dataset].path``, downloaded by the KFP launcher) and each output artifact
(``Output[Model].path``, uploaded after the task) into one override, ``paths.dirs.<step>=<artifact path>``,
and calls the same CLI command DVC calls, in-process. Nothing is copied; steps that would write into an
input (index-add writes a new version into the index folder) get a copy first (``copy_inputs``). Everything
else a step writes goes to a throw-away ``paths.work_dir``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    """``lcrec <step>`` exited with a non-zero code inside a pipeline task."""

    def __init__(self, step: str, rc: int, output: str):
        super().__init__(f"lcrec {step} failed with exit code {rc}; its error is printed above. Output tail:\n"
                         f"{output[-2000:]}")
        self.step, self.rc = step, rc


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


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
    args: Sequence[str] = (),
    check: bool = True,
) -> tuple[int, dict[str, Any]]:
    """Run ``lcrec <step> [args]`` with ``inputs``/``outputs`` ({step folder name: path}) mapped in; return
    (exit code, the stats dict the command printed). ``copy_inputs`` names inputs copied into the output folder
    of the same name first (``{"index": in}`` + ``{"index": out}``: the step updates a copy). ``check`` raises
    :class:`StepFailed` on a non-zero exit code."""
    from lcrec.cli import main

    inputs, outputs = dict(inputs or {}), dict(outputs or {})
    for name in copy_inputs:
        src, dst = Path(inputs.pop(name)), Path(outputs[name])
        shutil.copytree(src, dst, dirs_exist_ok=True)
    for path in outputs.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix=f"lcrec-{step}-")
    argv = [step] + (["--params", params_path] if params_path else ["--params", "params.yaml"])
    for item in [*overrides, *step_overrides(inputs, outputs, work_dir, tracking_uri)]:
        argv += ["--set", item]
    argv += list(args)
    previous = os.environ.get("LCREC_PARENT_RUN_ID")
    if parent_run_id:
        os.environ["LCREC_PARENT_RUN_ID"] = parent_run_id
    captured = io.StringIO()
    try:
        print("lcrec " + " ".join(argv), file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(_Tee(sys.stdout, captured)):
            rc = main(argv)
    finally:
        if parent_run_id:
            if previous is None:
                os.environ.pop("LCREC_PARENT_RUN_ID", None)
            else:
                os.environ["LCREC_PARENT_RUN_ID"] = previous
    text = captured.getvalue().strip()
    try:
        stats = json.loads(text) if text else {}
    except json.JSONDecodeError:
        stats = {}
    if rc and check:
        raise StepFailed(step, rc, text)
    return rc, stats if isinstance(stats, dict) else {"result": stats}


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
