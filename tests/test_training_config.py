"""Config checks: every key's type and range is checked before anything runs, and the
error names the key, the value and the expected form (no raw tracebacks, no values
silently accepted)."""

import copy

import pytest
import yaml

from geoff.errors import GeoffInputError
from geoff.training.config import DEFAULTS, TYPES, check_config, load_config, make_config

BASE = {"data": {"train": "train.xyz"}}

BAD = [  # (section, key, value, words of the expected form)
    ("optim", "lr", "fast", "a number ≥ 0"),
    ("optim", "batch_size", "eight", "a whole number ≥ 1"),
    ("optim", "batch_size", 2.7, "a whole number ≥ 1"),
    ("optim", "batch_size", 0, "a whole number ≥ 1"),
    ("model", "cutoff", "five", "a number > 0"),
    ("model", "cutoff", 0, "a number > 0"),
    ("model", "cutoff", -5, "a number > 0"),
    ("optim", "valid_every_epochs", 0, "a whole number ≥ 1"),
    ("optim", "ema_decay", 1.5, "a number in [0, 1)"),
    ("optim", "max_time_minutes", -1, "a number > 0 or null"),
    ("optim", "anneal_fraction", 2, "a number in (0, 1] or null"),
    ("optim", "early_stopping_patience", "never", "a whole number ≥ 1 or null"),
    ("data", "valid_fraction", 1.0, "a number in (0, 1)"),
    ("data", "n_train", -3, "a whole number ≥ 1 or null"),
    ("data", "energy_unit", "kcal", "one of"),
    ("data", "reference_energies", "fitted", "auto, isolated_atoms, least_squares or a mapping"),
    ("model", "species", ["H", "Hydrogen"], "element symbols"),
    ("model", "avg_num_neighbors", "many", 'a number > 0 or "auto"'),
    ("model", "hidden", "eight", "a whole number ≥ 1"),
    ("loss", "forces_weight", -1.0, "a number ≥ 0"),
    ("checkpoint", "every_steps", 2.5, "a whole number ≥ 0 or null"),
    ("finetune", "refit_reference_energies", "yes", "true or false"),
    (None, "seed", True, "a whole number ≥ 0"),
    (None, "dtype", "float16", "one of float32, float64"),
    (None, "progress", "no", "true or false"),
]


def _with(section, key, value):
    cfg = copy.deepcopy(BASE)
    if section is None:
        cfg[key] = value
    else:
        cfg.setdefault(section, {})[key] = value
    return cfg


@pytest.mark.parametrize("section,key,value,form", BAD, ids=[f"{s}.{k}={v!r}" for s, k, v, _ in BAD])
def test_bad_values_name_the_key_the_value_and_the_expected_form(section, key, value, form):
    where = key if section is None else f"{section}.{key}"
    with pytest.raises(GeoffInputError) as info:
        make_config(_with(section, key, value))
    msg = str(info.value)
    assert where in msg and repr(value) in msg and form in msg, msg


@pytest.mark.parametrize("section", ["optim", "data", "model", "loss"])
def test_a_section_that_is_not_a_mapping_is_refused(section):
    with pytest.raises(GeoffInputError, match=f"{section}: expected a mapping"):
        make_config({**BASE, section: [1, 2]} if section != "data" else {"data": ["train.xyz"]})


def test_good_values_are_kept_in_their_canonical_types(tmp_path):
    # YAML reads 1e-3 (no dot) as a string: it is a number all the same
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  train: train.xyz\n  config_types: methanol\noptim:\n  lr: 1e-3\n  max_epochs: 1.0e+3\n"
                    "  grad_clip: null\nmodel:\n  cutoff: 4\n  species: [H, C, O]\n  energy_scale: auto\n")
    cfg = load_config(path)
    assert cfg["optim"]["lr"] == 1e-3 and isinstance(cfg["optim"]["lr"], float)
    assert cfg["optim"]["max_epochs"] == 1000 and isinstance(cfg["optim"]["max_epochs"], int)
    assert cfg["model"]["cutoff"] == 4.0 and isinstance(cfg["model"]["cutoff"], float)
    assert cfg["optim"]["grad_clip"] is None and cfg["model"]["energy_scale"] == "auto"
    assert cfg["data"]["config_types"] == ["methanol"]  # one name is a list of one, not a set of letters
    assert make_config(copy.deepcopy(BASE))["optim"] == DEFAULTS["optim"]  # the defaults pass their own check


def test_every_default_key_has_a_type():
    for key, default in DEFAULTS.items():
        if isinstance(default, dict):
            for k in default:
                assert k in TYPES[key], f"{key}.{k}"
        else:
            assert key in TYPES, key


def test_broken_yaml_is_an_input_error_naming_the_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  train: train.xyz\n optim: [\n")
    with pytest.raises(GeoffInputError, match=r"not valid YAML.*line"):
        load_config(path)


def test_command_line_overrides_are_checked_too(tmp_path, capsys):
    from geoff.cli.main import main

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"data": {"train": "train.xyz"}, "run_dir": str(tmp_path / "run")}))
    assert main(["train", str(path), "--max-epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert "optim.max_epochs" in err and "a whole number ≥ 1" in err and "Traceback" not in err
    path.write_text("optim:\n  lr: fast\ndata:\n  train: train.xyz\n")
    assert main(["train", str(path)]) == 2
    assert "optim.lr: 'fast'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing was started


def test_check_config_is_idempotent():
    cfg = make_config(copy.deepcopy(BASE))
    assert check_config(copy.deepcopy(cfg)) == cfg
