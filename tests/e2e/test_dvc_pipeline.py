import json

import pytest
import yaml

from lcrec.config import apply_overrides
from tiny_params import TINY_BASELINES, TINY_STEPS

pytestmark = pytest.mark.slow


def test_dvc_repro_runs_then_does_nothing(repo_copy, sh):
    run = sh
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    # keep every stage short: the pipeline's shape and DVC's bookkeeping are what is under test here
    apply_overrides(params, [*TINY_STEPS, *TINY_BASELINES, "train.max_steps=4"])
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = yaml.safe_load((repo_copy / "dvc.yaml").read_text())["stages"]
    first = run(["dvc", "repro"], repo_copy, timeout=1200)
    for stage in stages:
        assert f"Running stage '{stage}'" in first.stdout, first.stdout
    stats = json.loads((repo_copy / "work" / "split" / "stats.json").read_text())
    assert stats["users"] == 943 and stats["items"] == 1349
    first_registered = json.loads((repo_copy / "work" / "register" / "registered.json").read_text())
    assert first_registered["promoted"] and first_registered["champion"] == first_registered["version"]
    second = run(["dvc", "repro"], repo_copy)
    assert "Running stage" not in second.stdout, second.stdout
    assert "up to date" in second.stdout.lower()
    status = run(["dvc", "status"], repo_copy)
    assert "up to date" in status.stdout.lower()
    run(["git", "add", "dvc.lock"], repo_copy)
    run(["git", "-c", "user.email=ci@lcrec", "-c", "user.name=ci", "commit", "-qm", "lock"], repo_copy)
    metrics = run(["dvc", "metrics", "show", "--json"], repo_copy)
    assert "avg_sequence_length" in metrics.stdout and "collision_rate_final" in metrics.stdout
    # a parameter sweep point: only the stages downstream of the changed parameter rerun
    exp = run(["dvc", "exp", "run", "-S", "evaluate.max_users=4", "-n", "four-users"], repo_copy)
    assert "Running stage 'evaluate'" in exp.stdout and "Running stage 'train'" not in exp.stdout, exp.stdout
    # the experiment registers a new version but leaves the serving champion where it was
    assert "Running stage 'register'" in exp.stdout, exp.stdout
    registered = json.loads((repo_copy / "work" / "register" / "registered.json").read_text())
    assert registered["version"] != first_registered["version"]
    assert not registered["promoted"] and "promote_in_experiments" in registered["reason"]
    assert registered["champion"] == first_registered["version"]
    shown = run(["dvc", "exp", "show", "--json"], repo_copy)
    assert "four-users" in shown.stdout
    # the committed run's series come back from the DVC cache through its dvc.lock (work/ is not in git)
    plots = run(["dvc", "plots", "diff", "HEAD", "--json", "-o", str(repo_copy.parent / "plots")], repo_copy)
    series = json.loads(plots.stdout)["data"]["work/train/loss_train.csv"]
    assert {"workspace", "HEAD"} <= {rev for entry in series for rev in entry["revisions"]}
    diff = json.loads(run(["dvc", "metrics", "diff", "HEAD", "--json"], repo_copy).stdout)
    assert diff["work/evaluate/metrics.json"], diff  # four users instead of the committed run's
