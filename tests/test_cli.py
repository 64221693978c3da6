import subprocess
import sys
from pathlib import Path

import pandas as pd

from lcrec.cli import main


def test_help_lists_steps(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for step in ("ingest", "validate", "features", "split", "params", "demo"):
        assert step in out


def test_bad_override_exits_2_with_message(capsys):
    assert main(["split", "--set", "split.k_core=lots"]) == 2
    assert "split.k_core: expected an integer" in capsys.readouterr().err


def test_params_shows_values_and_help(capsys):
    assert main(["params", "--set", "split.k_core=9"]) == 0
    out = capsys.readouterr().out
    assert "split.k_core = 9" in out and "k interactions" in out


def test_ingest_and_split_through_cli(tmp_path, capsys):
    common = ["--set", f"paths.work_dir={tmp_path}", "--set", "tracking.enabled=false"]
    assert main(["ingest", *common]) == 0
    assert main(["split", *common]) == 0
    assert len(pd.read_parquet(tmp_path / "split" / "test.parquet")) == 943


def test_user_errors_exit_1_with_message(tmp_path, capsys):
    rc = main(["split", "--set", f"paths.work_dir={tmp_path}", "--set", "tracking.enabled=false"])
    assert rc == 1
    assert "run `lcrec ingest` first" in capsys.readouterr().err


def test_console_script_starts_fast_and_prints_help():
    exe = Path(sys.executable).with_name("lcrec")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "usage: lcrec" in out
    # --help must not import the heavy stack
    probe = "import sys, lcrec.cli; print(sorted(m for m in ('torch','mlflow','feast','great_expectations') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"
