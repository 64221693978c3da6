"""The expectation suites: bounds come from the settings, the user reference check is optional."""

from __future__ import annotations

from lcrec.config import ValidateConfig
from lcrec.validation.suites import ITEM_IDS_PARAM, USER_IDS_PARAM, build_suites, timestamp_bounds

NOW = 1_700_000_000


def test_timestamp_bounds_follow_the_settings():
    assert timestamp_bounds(ValidateConfig(), NOW).low == 631152000
    assert timestamp_bounds(ValidateConfig(max_future_days=3), NOW).high == NOW + 3 * 86400
    assert timestamp_bounds(ValidateConfig(sequential_timestamps=True), NOW).low == 0


def _in_set_params(expectations) -> list[tuple[str, str]]:
    return [
        (e.column, e.value_set["$PARAMETER"])
        for e in expectations
        if e.expectation_type == "expect_column_values_to_be_in_set"
    ]


def test_interactions_reference_items_always_and_users_only_when_asked():
    cfg = ValidateConfig(rating_min=1.0, rating_max=10.0)
    with_users = build_suites(cfg, NOW, check_users=True)
    without = build_suites(cfg, NOW, check_users=False)
    assert _in_set_params(with_users["interactions"]) == [("item_id", ITEM_IDS_PARAM), ("user_id", USER_IDS_PARAM)]
    assert _in_set_params(without["interactions"]) == [("item_id", ITEM_IDS_PARAM)]
    rating = next(e for e in with_users["interactions"] if getattr(e, "column", None) == "rating"
                  and e.expectation_type == "expect_column_values_to_be_between")
    assert (rating.min_value, rating.max_value) == (1.0, 10.0)
    assert all(e.meta and e.meta.get("hint") for suite in with_users.values() for e in suite)
