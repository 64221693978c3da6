"""The validate step on tiny tables: clean data passes, each kind of corruption is caught and explained."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lcrec.cli import main
from lcrec.config import ValidateConfig, load_params
from lcrec.data.schema import INTERACTIONS, ITEMS, USERS, write_tables
from lcrec.validation.validate import (
    RESULT_FILE,
    VALIDATED_FILE,
    DataValidationError,
    file_sha256,
    run_validate,
    validate_tables,
)

T0 = 1_300_000_000  # 2011-03-13, a plausible event time
DAY = 86400


@pytest.fixture(scope="module", autouse=True)
def _great_expectations():
    """Import Great Expectations once for the module (~6 s); later tests reuse it."""
    import great_expectations  # noqa: F401


def clean_tables() -> dict[str, pd.DataFrame]:
    interactions = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3"],
            "item_id": ["i1", "i2", "i1", "i3", "i2"],
            "timestamp": [T0, T0 + 60, T0 + 5, T0 + 90, T0 + 7],
            "rating": [4.0, 5.0, np.nan, 1.0, 3.5],  # NaN = implicit feedback, allowed
            "review": ["good", "", "", "meh", ""],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "title": ["Toy Story (1995)", "Heat (1995)", "Fargo (1996)"],
            "description": ["Genres: Animation.", "Genres: Crime.", "Genres: Drama."],
            "text": ["Toy Story (1995) Animation", "Heat (1995) Crime", "Fargo (1996) Drama"],
        }
    )
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "gender": ["F", "M", "F"]})
    return {"interactions": interactions, "items": items, "users": users}


def write(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    write_tables(folder, tables["interactions"], tables["items"], tables["users"])
    return folder


def run(tmp_path: Path, tables: dict[str, pd.DataFrame], cfg: ValidateConfig | None = None) -> dict:
    return validate_tables(cfg or ValidateConfig(), write(tmp_path / "data", tables), tmp_path / "validation")


# --------------------------------------------------------------------------------------------------- passing
def test_clean_tables_pass_and_stamp_the_inputs(tmp_path):
    stats = run(tmp_path, clean_tables())
    out = tmp_path / "validation"
    assert stats["success"] is True and stats["failed"] == 0
    assert stats["expectations"] >= 25
    assert (out / "data_docs" / "index.html").is_file()
    result = json.loads((out / RESULT_FILE).read_text())
    assert all(rec["success"] for rec in result["expectations"])
    stamp = json.loads((out / VALIDATED_FILE).read_text())
    for name in (INTERACTIONS, ITEMS, USERS):
        assert stamp["files"][name] == file_sha256(tmp_path / "data" / name)


def test_positional_timestamps_and_missing_users_pass_when_allowed(tmp_path):
    tables = clean_tables()
    tables["interactions"]["timestamp"] = [0, 1, 0, 1, 0]
    tables["users"] = pd.DataFrame({"user_id": pd.Series([], dtype=str)})  # no profiles -> no user reference check
    tables["interactions"].loc[4, "user_id"] = "u9"
    with pytest.raises(DataValidationError, match="interactions.timestamp"):
        run(tmp_path, tables)
    stats = run(tmp_path, tables, ValidateConfig(sequential_timestamps=True))
    assert stats["success"] and stats["rows_users"] == 0


# --------------------------------------------------------------------------------------------------- failing
def _set(table: str, row: int, column: str, value) -> Callable[[dict], None]:
    def corrupt(t: dict) -> None:
        t[table].loc[row, column] = value

    return corrupt


def _duplicate_event(t: dict) -> None:
    t["interactions"] = pd.concat([t["interactions"], t["interactions"].iloc[[3]]], ignore_index=True)


def _duplicate_item(t: dict) -> None:
    extra = t["items"].iloc[[1]].assign(title="Heat (remastered)")
    t["items"] = pd.concat([t["items"], extra], ignore_index=True)


def _duplicate_user(t: dict) -> None:
    t["users"] = pd.concat([t["users"], t["users"].iloc[[2]]], ignore_index=True)


def _empty_interactions(t: dict) -> None:
    t["interactions"] = t["interactions"].iloc[:0]


FUTURE = int(time.time()) + 30 * DAY
CASES = {
    # name: (corruption, expectation, "table.column", an offending value as the message prints it)
    "null user id": (_set("interactions", 2, "user_id", None), "expect_column_values_to_not_be_null",
                     "interactions.user_id", "row 2: user_id=null"),
    "rating out of range": (_set("interactions", 1, "rating", 7.5), "expect_column_values_to_be_between",
                            "interactions.rating", "rating=7.5"),
    "timestamp in the future": (_set("interactions", 0, "timestamp", FUTURE), "expect_column_values_to_be_between",
                                "interactions.timestamp", f"timestamp={FUTURE}"),
    "timestamp before 1990": (_set("interactions", 4, "timestamp", 315532800), "expect_column_values_to_be_between",
                              "interactions.timestamp", "timestamp=315532800"),
    "duplicate event": (_duplicate_event, "expect_compound_columns_to_be_unique",
                        "interactions.user_id, item_id, timestamp", f"user_id='u2', item_id='i3', timestamp={T0 + 90}"),
    "unknown item": (_set("interactions", 3, "item_id", "ghost"), "expect_column_values_to_be_in_set",
                     "interactions.item_id", "item_id='ghost'"),
    "unknown user": (_set("interactions", 0, "user_id", "stranger"), "expect_column_values_to_be_in_set",
                     "interactions.user_id", "user_id='stranger'"),
    "duplicate item id": (_duplicate_item, "expect_column_values_to_be_unique", "items.item_id",
                          "title='Heat (remastered)'"),
    "blank title": (_set("items", 0, "title", "   "), "expect_column_values_to_match_regex", "items.title",
                    "title='   '"),
    "empty text": (_set("items", 2, "text", ""), "expect_column_values_to_match_regex", "items.text", "text=''"),
    "duplicate user id": (_duplicate_user, "expect_column_values_to_be_unique", "users.user_id", "user_id='u3'"),
    "empty interactions": (_empty_interactions, "expect_table_row_count_to_be_between", "interactions",
                           "observed 0"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_corruption_is_caught_and_explained(tmp_path, case):
    corrupt, expectation, where, example = CASES[case]
    tables = clean_tables()
    corrupt(tables)
    with pytest.raises(DataValidationError) as info:
        run(tmp_path, tables)
    message = str(info.value)
    failed_line = next((ln for ln in message.splitlines() if ln.startswith(f"- {where}: {expectation}")), None)
    assert failed_line is not None, message
    assert example in message, message
    assert "what to do:" in message and "index.html" in message
    out = tmp_path / "validation"
    assert (out / "data_docs" / "index.html").is_file()
    assert not (out / VALIDATED_FILE).exists()
    failed = [r for r in json.loads((out / RESULT_FILE).read_text())["expectations"] if not r["success"]]
    assert any(r["expectation"] == expectation and where.startswith(r["table"]) for r in failed)


@pytest.mark.parametrize("text_dtype", [object, "string"])  # checked value by value / as a column dtype
def test_timestamp_stored_as_text_is_a_type_error(tmp_path, text_dtype):
    data = write(tmp_path / "data", clean_tables())
    frame = pd.read_parquet(data / INTERACTIONS)
    frame["timestamp"] = frame["timestamp"].astype(str).astype(text_dtype)
    frame.to_parquet(data / INTERACTIONS, index=False)
    with pytest.raises(DataValidationError) as info:
        validate_tables(ValidateConfig(), data, tmp_path / "validation")
    message = str(info.value)
    assert "- interactions.timestamp: expect_column_values_to_be_in_type_list" in message, message
    assert f"timestamp='{T0}'" in message, message


def test_missing_column_is_named(tmp_path):
    data = write(tmp_path / "data", clean_tables())
    pd.read_parquet(data / ITEMS).drop(columns=["title"]).to_parquet(data / ITEMS, index=False)
    with pytest.raises(DataValidationError) as info:
        validate_tables(ValidateConfig(), data, tmp_path / "validation")
    message = str(info.value)
    assert "- items: expect_table_columns_to_match_set" in message, message
    assert "'missing_columns': ['title']" in message, message
    assert "it could not be evaluated (the column 'title' is missing)" in message, message


def test_failing_run_leaves_inputs_unchanged_and_removes_a_stale_stamp(tmp_path):
    out = tmp_path / "validation"
    run(tmp_path, clean_tables())
    assert (out / VALIDATED_FILE).exists()
    tables = clean_tables()
    tables["interactions"].loc[0, "rating"] = 42.0
    data = write(tmp_path / "data", tables)
    before = {name: file_sha256(data / name) for name in (INTERACTIONS, ITEMS, USERS)}
    with pytest.raises(DataValidationError) as info:
        validate_tables(ValidateConfig(), data, out)
    assert {name: file_sha256(data / name) for name in (INTERACTIONS, ITEMS, USERS)} == before
    assert not (out / VALIDATED_FILE).exists()
    assert (out / "data_docs" / "index.html").is_file()
    assert info.value.docs_index == out / "data_docs" / "index.html"
    record = next(r for r in info.value.failures if r["column"] == "rating")
    assert record["unexpected_count"] == 1 and record["examples"][0]["values"]["rating"] == 42.0


def test_settings_widen_the_limits(tmp_path):
    tables = clean_tables()
    tables["interactions"].loc[1, "rating"] = 10.0
    with pytest.raises(DataValidationError, match="validate.rating_max"):
        run(tmp_path, tables)
    assert run(tmp_path, tables, ValidateConfig(rating_max=10.0))["success"]
    with pytest.raises(DataValidationError, match="expect_table_row_count_to_be_between"):
        run(tmp_path, clean_tables(), ValidateConfig(min_interactions=6))


# --------------------------------------------------------------------------------------------------- drivers
def test_run_validate_logs_to_mlflow_and_guards_downstream(tmp_path):
    import mlflow

    params = load_params(None, overrides=[f"paths.work_dir={tmp_path / 'work'}"])
    data, out = params.paths.step("data"), params.paths.step("validation")
    write(data, clean_tables())
    stats = run_validate(params)
    assert stats["success"] and (out / VALIDATED_FILE).exists()

    downstream = params.paths.step("split") / "train.parquet"  # another step's output must survive
    downstream.parent.mkdir(parents=True)
    downstream.write_bytes(b"not mine")
    tables = clean_tables()
    tables["interactions"].loc[2, "item_id"] = "ghost"
    write(data, tables)
    with pytest.raises(DataValidationError, match="item_id='ghost'"):
        run_validate(params)
    assert not (out / VALIDATED_FILE).exists()
    assert downstream.read_bytes() == b"not mine"

    runs = mlflow.search_runs(experiment_names=[params.tracking.experiment],
                              filter_string="tags.`lcrec.step` = 'validate'")
    assert sorted(runs["metrics.success"]) == [0.0, 1.0]
    assert sorted(runs["metrics.failed"]) == [0.0, 1.0]


def test_cli_exits_1_with_the_explanation_on_stderr(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no params.yaml here: defaults
    tables = clean_tables()
    tables["interactions"].loc[0, "rating"] = -1.0
    write(tmp_path / "work" / "data", tables)
    rc = main(["validate", "--set", "tracking.enabled=false"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "- interactions.rating: expect_column_values_to_be_between" in err and "rating=-1.0" in err
    assert (tmp_path / "work" / "validation" / "data_docs" / "index.html").is_file()
