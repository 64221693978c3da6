import json

import pytest

pytestmark = pytest.mark.slow


def test_dvc_repro_runs_then_does_nothing(repo_copy, sh):
    run = sh
    first = run(["dvc", "repro"], repo_copy, timeout=900)
    for stage in ("ingest", "validate", "features", "split"):
        assert f"Running stage '{stage}'" in first.stdout, first.stdout
    stats = json.loads((repo_copy / "work" / "split" / "stats.json").read_text())
    assert stats["users"] == 943 and stats["items"] == 1349
    second = run(["dvc", "repro"], repo_copy)
    assert "Running stage" not in second.stdout, second.stdout
    assert "up to date" in second.stdout.lower()
    status = run(["dvc", "status"], repo_copy)
    assert "up to date" in status.stdout.lower()
    metrics = run(["dvc", "metrics", "show", "--json"], repo_copy)
    assert "avg_sequence_length" in metrics.stdout
