"""The step table: a valid run order, dvc.yaml generated from it, every driver wired from it, and no step module
importing a driver."""

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lcrec import steps

REPO = Path(__file__).resolve().parents[1]


def test_the_table_is_a_run_order_with_features_after_the_index():
    steps.check_order()
    names = [s.name for s in steps.pipeline_steps()]
    assert names.index("features") > names.index("quantize")
    assert "quantize" in steps.step("features").reads  # Feast holds the codes of this run's index
    assert "baselines" in steps.step("evaluate").reads  # the comparison table reads the baselines' metrics


def test_a_step_reading_what_nothing_wrote_is_refused(monkeypatch):
    bad = steps.Step("early", "x:y", "reads the model before training", reads=("train",))
    monkeypatch.setattr(steps, "STEPS", (bad, *steps.STEPS))
    with pytest.raises(ValueError, match="early.*train"):
        steps.check_order()


def test_committed_dvc_yaml_is_the_generated_one():
    committed = (REPO / "dvc.yaml").read_text()
    assert committed == steps.dvc_yaml(), "dvc.yaml is stale: run `lcrec steps --dvc-yaml` and commit it"
    stages = yaml.safe_load(committed)["stages"]
    assert list(stages) == [s.name for s in steps.pipeline_steps()]
    assert "work/index/index.json" in stages["features"]["deps"]
    assert "work/baselines/metrics.json" in stages["evaluate"]["deps"]


@pytest.mark.parametrize("name", list(steps.BY_NAME))
def test_every_step_function_takes_params_and_its_options(name):
    fn = steps.function(name)
    sig = inspect.signature(fn)
    first, *rest = sig.parameters
    assert first == "params"
    assert {o.dest for o in steps.step(name).options if o.argument} <= set(rest)


def test_unknown_step_or_option_is_named():
    with pytest.raises(KeyError, match="nope.*ingest"):
        steps.step("nope")
    with pytest.raises(TypeError, match="resum"):
        steps.run("train", None, resum=True)


def test_step_modules_import_no_driver():
    """Every step module, imported as the KFP component or the demo would, pulls in neither the CLI, the demo,
    the KFP SDK nor KServe (no import loop through a driver)."""
    probe = ("import sys, json\nfrom lcrec import steps\n"
             "for s in steps.STEPS: steps.function(s.name)\n"
             "print(json.dumps(sorted(m for m in ('lcrec.cli', 'lcrec.demo', 'kfp', 'kserve', 'lcrec.kubeflow')"
             " if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_kfp_components_take_the_artifacts_the_table_names():
    from lcrec.kubeflow import components
    from lcrec.kubeflow.step_runner import artifact_folders

    class Art:
        def __init__(self, name):
            self.path = f"/art/{name}"

    for s in steps.pipeline_steps():
        params = inspect.signature(getattr(components, s.name.replace("-", "_"))).parameters
        artifacts = {n: Art(n) for n, p in params.items() if "Input" in str(p.annotation) or "Output" in str(p.annotation)}
        inputs, outputs = artifact_folders(s.name, artifacts)
        assert outputs == {steps.folder(s.name): f"/art/{s.output}"}
        assert set(inputs) == {steps.folder(r) for r in s.reads}
        # besides the table's folders, only views for the KFP UI: metrics, Data Docs (HTML), the comparison (Markdown)
        extra = set(artifacts) - {steps.step(r).output for r in s.reads} - {s.output, "metrics", "data_docs",
                                                                             "comparison"}
        assert not extra, f"component {s.name} takes artifacts the table does not name: {extra}"


def test_readme_pipeline_table_lists_the_steps_in_the_table_order():
    """README's pipeline table documents each step at length; its rows follow the step table (nothing missing,
    nothing the table lacks, the pipeline steps in their run order)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = re.findall(r"^\| ([a-z-]+) \| `lcrec ([a-z-]+)", readme, flags=re.M)
    documented = [name for name, command in rows if name == command]
    assert set(steps.BY_NAME) <= set(documented), set(steps.BY_NAME) - set(documented)
    order = [n for n in documented if n in {s.name for s in steps.pipeline_steps()}]
    assert order == [s.name for s in steps.pipeline_steps()]


def test_metric_series_are_dvc_plots_with_their_axes():
    stages = yaml.safe_load(steps.dvc_yaml())["stages"]
    plots = {k: v for entry in stages["train"]["plots"] if isinstance(entry, dict) for k, v in entry.items()}
    assert plots["work/train/loss_train.csv"] == {"x": "step", "y": "loss"}  # cached: other revisions via dvc.lock
    assert plots["work/train/loss_valid.csv"]["y"] == "eval_loss"
    sasrec = {k: v for entry in stages["baselines"]["plots"] if isinstance(entry, dict) for k, v in entry.items()}
    assert sasrec["work/baselines/sasrec_curve.csv"]["x"] == "epoch"


def _paths(entries) -> set[str]:
    return {e if isinstance(e, str) else (e["path"] if "path" in e else next(iter(e))) for e in entries or []}


def test_committed_dvc_lock_records_a_run_of_this_table_with_the_committed_defaults():
    lock_path = REPO / "dvc.lock"
    assert lock_path.exists(), "dvc.lock is missing: run `dvc repro` with the committed params.yaml and commit it"
    lock = yaml.safe_load(lock_path.read_text())["stages"]
    stages = yaml.safe_load(steps.dvc_yaml())["stages"]
    hint = "dvc.lock is stale: run `dvc repro` (or `dvc commit` after a run of the committed params) and commit it"
    assert set(lock) == set(stages), hint
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, stage in stages.items():
        locked = lock[name]
        assert locked["cmd"] == stage["cmd"], (name, hint)
        assert _paths(locked.get("deps")) == set(stage["deps"]), (name, hint)
        declared = _paths(stage.get("outs")) | _paths(stage.get("metrics")) | _paths(stage.get("plots"))
        assert _paths(locked.get("outs")) == declared, (name, hint)
        assert all(o.get("md5") for o in locked.get("outs", [])), (name, "an output without a hash")
        recorded = locked.get("params", {}).get("params.yaml", {})
        assert set(recorded) == set(stage.get("params", [])), (name, hint)
        for key, value in recorded.items():
            assert value == params[key], (name, key, hint)
