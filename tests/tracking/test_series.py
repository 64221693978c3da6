"""Metric series for DVC plots: one row per logged point, a missing value left empty, rows without one dropped."""

from lcrec.tracking.series import read_series, write_series


def test_series_keep_the_points_that_were_logged(tmp_path):
    history = [{"step": 100, "loss": 2.5, "loss_mut": 3.0}, {"step": 200, "eval_loss": 2.1},
               {"step": 200, "loss": 2.0}, {"epoch": 1.0, "learning_rate": 1e-3}]
    path = tmp_path / "plots" / "train_loss.csv"
    assert write_series(history, "step", ["loss", "loss_mut"], path) == 2
    assert read_series(path) == [{"step": 100.0, "loss": 2.5, "loss_mut": 3.0},
                                 {"step": 200.0, "loss": 2.0, "loss_mut": None}]
    assert write_series(history, "step", ["eval_loss"], tmp_path / "valid.csv") == 1
    assert read_series(tmp_path / "valid.csv") == [{"step": 200.0, "eval_loss": 2.1}]
