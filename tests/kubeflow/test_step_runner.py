"""run_step: a step's folders mapped onto artifact paths, its scratch work dir removed afterwards."""

from pathlib import Path

import pytest

from lcrec import steps
from lcrec.kubeflow.step_runner import run_step, step_overrides

REPO = Path(__file__).resolve().parents[2]


def test_overrides_map_each_folder_and_the_tracking_server():
    out = step_overrides({"split": "/in/split"}, {"index": "/out/index"}, "/scratch", "http://127.0.0.1:5000")
    assert out == ["paths.work_dir=/scratch", "paths.dirs.split=/in/split", "paths.dirs.index=/out/index",
                   "tracking.uri=http://127.0.0.1:5000"]


@pytest.mark.parametrize("fails", [False, True])
def test_the_step_writes_its_output_and_leaves_no_scratch_behind(monkeypatch, tmp_path, fails):
    seen = {}

    def fake_run(name, params, **options):
        seen["work_dir"] = Path(params.paths.work_dir)
        (seen["work_dir"] / "scratch.txt").write_text("x")
        (params.paths.step("index") / "index.json").write_text("{}")
        if fails:
            raise RuntimeError("step failed")
        return {"name": name}

    monkeypatch.setattr(steps, "run", fake_run)
    monkeypatch.delenv("LCREC_KFP_RUN_ID", raising=False)
    out = tmp_path / "index"
    call = lambda: run_step("quantize", params_path=REPO / "params.yaml",  # noqa: E731
                            overrides=["tracking.enabled=false"], outputs={"index": str(out)})
    if fails:
        with pytest.raises(RuntimeError, match="step failed"):
            call()
    else:
        assert call() == {"name": "quantize"}
    assert (out / "index.json").exists()
    assert not seen["work_dir"].exists()
