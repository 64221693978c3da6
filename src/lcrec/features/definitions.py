"""The Feast objects of lcrec: entities, sources, feature views and feature services.

One source of truth: the library (``lcrec.features.store``) applies :func:`build_definitions` through the Python
API, and ``feature_repo/features.py`` exposes the same objects at module level so ``cd feature_repo && feast
apply`` registers exactly the same thing.

Every file source path is relative (``data/...``); Feast resolves it against the repository folder, so the
registry stays valid when the repository folder is copied or mounted elsewhere.

Views (all online):
- ``item_features`` (entity ``item``): title, text, categories, codes (the item's code string, e.g.
  ``<a_12><b_201><c_7><d_88>``; empty until an index exists). Fed by ``item_push`` too: new items arrive at
  serving time and are pushed.
- ``user_features`` (entity ``user``): recent_items (the last ``history_len`` item ids, oldest first, joined
  with ", "), n_interactions, mean_rating, last_timestamp (unix s), user_code (the user index's code). One row per (user, event time), so historical
  reads are point-in-time correct. The history is a joined string, not a list: Feast's file offline store
  tokenizes list columns with dask by pickling every cell three times, which made materializing MovieLens-100K
  take 16 s instead of under one.
- ``user_topk`` (entity ``user``): the cached top-K of the recommender: item_ids, scores, index_version,
  history_hash, model_version. Fed by ``user_topk_push`` (the serving and evaluate steps push into it).

This module imports feast at top level: import it only where feast is needed (never from the CLI at start-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Float64, Int64, String

from lcrec.features.frames import CREATED_TS, EVENT_TS
from lcrec.features.layout import (
    ITEM_PUSH,
    ITEM_SERVICE,
    ITEM_SOURCE_FILE,
    ITEM_VIEW,
    TOPK_PUSH,
    TOPK_SERVICE,
    TOPK_SOURCE_FILE,
    TOPK_VIEW,
    USER_SERVICE,
    USER_SOURCE_FILE,
    USER_VIEW,
)


@dataclass
class FeastDefinitions:
    """Everything :meth:`objects` hands to ``FeatureStore.apply``."""

    user: Entity
    item: Entity
    item_source: FileSource
    user_source: FileSource
    topk_source: FileSource
    item_push: PushSource
    topk_push: PushSource
    item_features: FeatureView
    user_features: FeatureView
    user_topk: FeatureView
    item_service: FeatureService
    user_service: FeatureService
    topk_service: FeatureService
    serving_service: FeatureService

    def objects(self) -> list[Any]:
        return [getattr(self, name) for name in self.__dataclass_fields__]

    def by_name(self) -> dict[str, Any]:
        """Python identifiers -> objects (``feature_repo/features.py`` puts these in its globals)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _file_source(name: str, path: str, description: str) -> FileSource:
    return FileSource(
        name=name,
        path=path,
        timestamp_field=EVENT_TS,
        created_timestamp_column=CREATED_TS,
        description=description,
    )


def build_definitions(ttl_days: int = 36500) -> FeastDefinitions:
    """Build the Feast objects. ``ttl_days`` is the views' time-to-live (MovieLens events are decades old)."""
    if ttl_days <= 0:
        raise ValueError(f"features.ttl_days must be a positive number of days, got {ttl_days}")
    ttl = timedelta(days=ttl_days)
    user = Entity(
        name="user",
        join_keys=["user_id"],
        value_type=ValueType.STRING,
        description="A user of the catalogue.",
    )
    item = Entity(
        name="item", join_keys=["item_id"], value_type=ValueType.STRING, description="A catalogue item."
    )

    item_source = _file_source(
        "item_features_source", ITEM_SOURCE_FILE, "Item text and codes (lcrec features)."
    )
    user_source = _file_source("user_features_source", USER_SOURCE_FILE, "Per-event user history snapshots.")
    topk_source = _file_source(
        "user_topk_source", TOPK_SOURCE_FILE, "Top-K cache rows pushed by serving/evaluate."
    )
    item_push = PushSource(
        name=ITEM_PUSH, batch_source=item_source, description="New items pushed at serving time."
    )
    topk_push = PushSource(
        name=TOPK_PUSH, batch_source=topk_source, description="Per-user top-K cache updates."
    )

    item_features = FeatureView(
        name=ITEM_VIEW,
        entities=[item],
        ttl=ttl,
        online=True,
        source=item_push,
        schema=[
            Field(name="title", dtype=String),
            Field(name="text", dtype=String),
            Field(name="categories", dtype=String),
            Field(
                name="codes",
                dtype=String,
                description="Concatenated item codes; empty until an index exists.",
            ),
        ],
        description="Item text and learned code string.",
    )
    user_features = FeatureView(
        name=USER_VIEW,
        entities=[user],
        ttl=ttl,
        online=True,
        source=user_source,
        schema=[
            Field(
                name="recent_items",
                dtype=String,
                description='Last history_len item ids, oldest first, ", "-joined.',
            ),
            Field(name="n_interactions", dtype=Int64),
            Field(
                name="mean_rating", dtype=Float64, description="Mean explicit rating; missing when implicit."
            ),
            Field(name="last_timestamp", dtype=Int64, description="Unix seconds of the latest interaction."),
            Field(name="user_code", dtype=String,
                  description="The user's code from the user index (<ua_..><ub_..>...); empty when it has none."),
        ],
        description="User recent history, activity statistics and user code.",
    )
    user_topk = FeatureView(
        name=TOPK_VIEW,
        entities=[user],
        ttl=ttl,
        online=True,
        source=topk_push,
        schema=[
            Field(name="item_ids", dtype=Array(String)),
            Field(name="scores", dtype=Array(Float64)),
            Field(
                name="index_version",
                dtype=String,
                description="Version of the item index the list was made with.",
            ),
            Field(
                name="history_hash",
                dtype=String,
                description="Hash of the history the list was computed from.",
            ),
            Field(
                name="model_version",
                dtype=String,
                description="Version of the served model the list was computed with.",
            ),
        ],
        description="Cached top-K recommendations per user.",
    )
    return FeastDefinitions(
        user=user,
        item=item,
        item_source=item_source,
        user_source=user_source,
        topk_source=topk_source,
        item_push=item_push,
        topk_push=topk_push,
        item_features=item_features,
        user_features=user_features,
        user_topk=user_topk,
        item_service=FeatureService(name=ITEM_SERVICE, features=[item_features]),
        user_service=FeatureService(name=USER_SERVICE, features=[user_features]),
        topk_service=FeatureService(name=TOPK_SERVICE, features=[user_topk]),
        serving_service=FeatureService(
            name="serving_service",
            features=[user_features, user_topk],
            description="What the predictor reads per request: history and the cached top-K.",
        ),
    )
