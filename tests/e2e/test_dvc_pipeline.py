import json

import pytest
import yaml

pytestmark = pytest.mark.slow


def test_dvc_repro_runs_then_does_nothing(repo_copy, sh):
    run = sh
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    # keep every stage short: the pipeline's shape and DVC's bookkeeping are what is under test here
    params["embed"].update(max_length=32, batch_size=128)
    params["quantize"].update(epochs=3, codebook_size=32, code_dim=8, kmeans_iters=5)
    params["tasks"].update(families=["seq"], epochs=1, valid_templates=1)
    params["train"].update(backbone="tiny-llama", max_steps=4, batch_size=4, max_len=128, eval_rows=8)
    params["baselines"]["sasrec"].update(epochs=1, max_minutes=0.5)
    params["evaluate"].update(max_users=8, ite=False, title_items=0, templates=["seq/0"])
    params["decode"].update(beam_width=10, top_k=10)
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = yaml.safe_load((repo_copy / "dvc.yaml").read_text())["stages"]
    first = run(["dvc", "repro"], repo_copy, timeout=1200)
    for stage in stages:
        assert f"Running stage '{stage}'" in first.stdout, first.stdout
    stats = json.loads((repo_copy / "work" / "split" / "stats.json").read_text())
    assert stats["users"] == 943 and stats["items"] == 1349
    second = run(["dvc", "repro"], repo_copy)
    assert "Running stage" not in second.stdout, second.stdout
    assert "up to date" in second.stdout.lower()
    status = run(["dvc", "status"], repo_copy)
    assert "up to date" in status.stdout.lower()
    metrics = run(["dvc", "metrics", "show", "--json"], repo_copy)
    assert "avg_sequence_length" in metrics.stdout and "collision_rate_final" in metrics.stdout
    # a parameter sweep point: only the stages downstream of the changed parameter rerun
    exp = run(["dvc", "exp", "run", "-S", "evaluate.max_users=4", "-n", "four-users"], repo_copy)
    assert "Running stage 'evaluate'" in exp.stdout and "Running stage 'train'" not in exp.stdout, exp.stdout
    shown = run(["dvc", "exp", "show", "--json"], repo_copy)
    assert "four-users" in shown.stdout
