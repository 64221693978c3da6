"""Names and file layout of the Feast repository, importable without feast.

The parquet sources live in ``<repo>/data`` (git-ignored) under the relative paths below; Feast resolves them
against the repository folder, so a copied or mounted repository keeps working.
"""

from __future__ import annotations

PROJECT = "lcrec"
STORE_CONFIG = "feature_store.yaml"  # one machine: file registry, sqlite online store
PRODUCTION_CONFIG = "feature_store.production.yaml"  # a cluster: SQL registry, Redis online store (env-configured)
DATA_SUBDIR = "data"

ITEM_SOURCE_FILE = f"{DATA_SUBDIR}/item_features.parquet"
USER_SOURCE_FILE = f"{DATA_SUBDIR}/user_features.parquet"
TOPK_SOURCE_FILE = f"{DATA_SUBDIR}/user_topk.parquet"

ITEM_VIEW = "item_features"
USER_VIEW = "user_features"
TOPK_VIEW = "user_topk"
ITEM_PUSH = "item_push"
TOPK_PUSH = "user_topk_push"

ITEM_SERVICE = "item_service"
USER_SERVICE = "user_service"
TOPK_SERVICE = "user_topk_service"

ITEM_FEATURE_NAMES = ("title", "text", "categories", "codes")
USER_FEATURE_NAMES = ("recent_items", "n_interactions", "mean_rating", "last_timestamp", "user_code")
TOPK_FEATURE_NAMES = ("item_ids", "scores", "index_version", "history_hash", "model_version")
