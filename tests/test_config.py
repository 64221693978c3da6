from pathlib import Path

import pytest
import yaml

from lcrec.config import RUNTIME_KNOBS, ConfigError, Params, describe, dump_defaults, load_params

REPO = Path(__file__).resolve().parents[1]


def test_defaults_load_without_file(tmp_path):
    params = load_params(None)
    assert params.data.source == "ml-100k"
    assert params.split.k_core == 5


def test_committed_params_file_holds_every_knob():
    committed = yaml.safe_load((REPO / "params.yaml").read_text())
    defaults = yaml.safe_load(dump_defaults())
    inherited = {k for knobs in RUNTIME_KNOBS.values() for k in knobs}
    for section, values in defaults.items():
        assert section in committed, f"params.yaml lacks section {section}"
        missing = {k for k in set(values) - set(committed[section]) if f"{section}.{k}" not in inherited}
        assert not missing, f"params.yaml section {section} lacks {sorted(missing)}"
    load_params(REPO / "params.yaml")  # and it type-checks


def test_one_knob_in_one_place():
    """A step repeats a runtime knob only to override it; the SASRec-CE recipe is one section."""
    committed = yaml.safe_load((REPO / "params.yaml").read_text())
    for name, knobs in RUNTIME_KNOBS.items():
        for dotted in knobs:
            section, key = dotted.split(".")
            if key in committed[section]:
                assert committed[section][key] != committed["runtime"][name], f"{dotted} repeats runtime.{name}"
    assert "sasrec" not in committed["embed"] and "sasrec" not in committed["baselines"]


def test_steps_inherit_the_runtime_section_unless_they_override_it():
    params = load_params(REPO / "params.yaml", ["runtime.device=cpu", "runtime.seed=7", "evaluate.seed=3"])
    assert {params.embed.device, params.sasrec.device, params.quantize.device, params.evaluate.device,
            params.serve.device} == {"cpu"}
    assert (params.sasrec.seed, params.quantize.seed, params.tasks.seed, params.train.seed) == (7, 7, 7, 7)
    assert params.evaluate.seed == 3  # its own setting wins
    assert params.quantize.threads == 1 and params.serve.threads == 0  # params.yaml overrides quantize's
    assert load_params(None).serve.dtype == "auto" == load_params(None).runtime.dtype


def test_old_sasrec_sections_say_where_they_went():
    for old in ("embed.sasrec.lr=1e-3", "baselines.sasrec.epochs=2"):
        with pytest.raises(ConfigError, match="top-level sasrec section"):
            load_params(None, [old])


def test_overrides_are_typed():
    params = load_params(None, ["data.source=ml-1m", "split.k_core=10", "validate.rating_max=10"])
    assert params.data.source == "ml-1m" and params.split.k_core == 10
    assert isinstance(params.validate.rating_max, float)


def test_exponent_floats_without_a_dot_are_numbers():
    params = load_params(None, ["train.lr=2e-4", "sasrec.lr=1E-3"])  # YAML 1.1 reads these as strings
    assert params.train.lr == 2e-4 and params.sasrec.lr == 1e-3
    with pytest.raises(ConfigError, match=r"train.lr: expected a number, got 'fast'"):
        load_params(None, ["train.lr=fast"])


def test_unknown_key_names_the_valid_ones(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("split:\n  kcore: 3\n")
    with pytest.raises(ConfigError, match=r"split: unknown setting\(s\) kcore; valid settings are: k_core"):
        load_params(path)


def test_wrong_type_says_where():
    with pytest.raises(ConfigError, match=r"split.k_core: expected an integer, got 'many'"):
        load_params(None, ["split.k_core=many"])


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_params(None, ["split.k_core"])


def test_missing_explicit_params_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "missing.yaml")


def test_every_knob_has_help():
    rows = describe(Params)
    assert rows and all(help_text for _key, _default, help_text in rows)


@pytest.mark.parametrize("overrides, words", [
    (["tasks.max_history=30"], "split.max_history=20"),
    (["serve.max_history=10"], "tasks.max_history=20"),
    (["features.history_len=5"], "raise features.history_len"),
])
def test_history_lengths_must_agree(overrides, words):
    with pytest.raises(ConfigError, match=words):
        load_params(None, overrides)


def test_history_lengths_may_shrink_together():
    p = load_params(None, ["split.max_history=10", "tasks.max_history=10", "serve.max_history=10"])
    assert p.serve.max_history == 10 and p.features.history_len == 20
