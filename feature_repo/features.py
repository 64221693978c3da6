"""Feast definitions for `feast apply` in this folder: the very objects the lcrec library applies.

The time-to-live comes from ../params.yaml (section `features`) when that file exists, else from the defaults.
"""

from pathlib import Path

from lcrec.config import FeaturesConfig, load_params
from lcrec.features.definitions import build_definitions

_params_file = Path(__file__).resolve().parent.parent / "params.yaml"
_cfg = load_params(_params_file).features if _params_file.exists() else FeaturesConfig()

globals().update(build_definitions(ttl_days=_cfg.ttl_days).by_name())
