"""Training: loss, schedule, EMA, data-derived scales, a short run end to end,
early stopping, the time budget, float64, and the `geoff train` command."""

import csv
import math

import numpy as np
import pytest
import torch

import geoff
from geoff import keys
from geoff.training import train
from geoff.training.data import TARGET_ENERGY, TARGET_FORCES, collate, precompute_edges, read_dataset
from geoff.training.loss import ErrorMetrics, loss_terms
from geoff.training.schedule import EMA, WarmupPlateau
from geoff.training.statistics import average_num_neighbors, force_rms

from tests.structures import DATA  # noqa: E402  (tests/data/ethanol)
pytestmark = pytest.mark.skipif(not (DATA / "train.xyz").exists(), reason="ethanol data not available")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models train fastest on one thread; more threads only contend on a shared machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_config(run_dir, **overrides):
    """A training config that runs in about a second: 16 ethanol structures, a tiny EGNN."""
    cfg = {
        "run_dir": str(run_dir), "seed": 3, "progress": False, "plots": False,
        "data": {"train": str(DATA / "train.xyz"), "index": "0:20", "n_train": 16, "n_valid": 4,
                 "isolated_atoms": str(DATA / "isolated_atoms.xyz")},
        "model": {"type": "egnn", "cutoff": 5.0, "hidden": 16, "num_layers": 2, "num_basis": 4},
        "optim": {"batch_size": 4, "max_epochs": 4, "warmup_steps": 2, "lr": 1e-2, "valid_batch_size": 8,
                  "ema_decay": 0.9},
        "checkpoint": {"every_steps": 3},
    }
    for section, values in overrides.items():
        if isinstance(values, dict):
            cfg.setdefault(section, {}).update(values)
        else:
            cfg[section] = values
    return cfg


def test_loss_terms_match_the_formula():
    samples = read_dataset(DATA / "train.xyz", index="0:3")
    precompute_edges(samples, 5.0)
    batch = collate(samples, torch.float64)
    out = {keys.ENERGY: batch[TARGET_ENERGY] + torch.tensor([0.9, -0.18, 0.0], dtype=torch.float64),
           keys.FORCES: batch[TARGET_FORCES] + 0.1}
    t = loss_terms(out, batch, {"energy": 2.0, "forces": 3.0})
    # energies enter per atom (9 atoms): ((0.9/9)² + (0.18/9)²) · 2
    assert float(t["energy"]) == pytest.approx(2.0 * ((0.1) ** 2 + 0.02 ** 2), rel=1e-12)
    assert float(t["forces"]) == pytest.approx(3.0 * 27 * 3 * 0.01, rel=1e-12)
    m = ErrorMetrics()
    m.update(out, batch)
    s = m.summary()
    assert s["energy_mae_mev"] == pytest.approx(1e3 * (0.9 + 0.18) / 3, rel=1e-9)
    assert s["energy_mae_mev_per_atom"] == pytest.approx(1e3 * (0.1 + 0.02) / 3, rel=1e-9)
    assert s["forces_mae_mev_per_a"] == pytest.approx(100.0, rel=1e-9)
    assert s["forces_rmse_mev_per_a"] == pytest.approx(100.0, rel=1e-9)


def test_warmup_then_plateau_decay():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    s = WarmupPlateau(opt, base_lr=1.0, warmup_steps=4, factor=0.5, patience=2, min_lr=0.2)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(5):
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert not s.validation(1.0)  # improves on inf
    assert not s.validation(1.0) and not s.validation(1.0)  # patience 2
    assert s.validation(1.0) and opt.param_groups[0]["lr"] == pytest.approx(0.5)
    for _ in range(3):
        s.validation(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25)
    for _ in range(3):
        s.validation(1.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)  # floor
    state = s.state_dict()
    s2 = WarmupPlateau(opt, base_lr=1.0, warmup_steps=4, factor=0.5, patience=2, min_lr=0.2)
    s2.load_state_dict(state)
    assert s2.lr() == s.lr()


def test_ema_follows_the_formula():
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9)
    expected = 0.0
    for n in range(1, 30):
        with torch.no_grad():
            model.weight.fill_(float(n))
        ema.update(model)
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * n
    assert float(ema.shadow["weight"]) == pytest.approx(expected, rel=1e-6)


def test_short_training_run_learns_and_writes_its_files(tmp_path):
    cfg = tiny_config(tmp_path / "run", plots=True, optim={"max_epochs": 14})
    summary = train(cfg)
    run = tmp_path / "run"
    for name in ("config.yaml", "checkpoint.pt", "best.pt", "last.pt", "metrics.csv", "learning_curve.png",
                 "parity_valid.png", "summary.yaml"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 14 and summary["epochs"] == 14 and summary["steps"] == 14 * 4
    first, best = float(rows[0]["valid_loss"]), min(float(r["valid_loss"]) for r in rows)
    assert best < 0.8 * first, (first, best)
    pot = geoff.load(run / "best.pt")
    assert pot.species == ["H", "C", "O"]
    # reference energies are the isolated-atom energies of the data set
    assert pot.reference_energy_dict()["O"] == pytest.approx(-2035.5709809589698)
    # the data-derived scales: ethanol within 5 Å is fully connected (8 neighbours), energy scale = force RMS
    samples = read_dataset(DATA / "train.xyz", index="0:20")
    precompute_edges(samples, 5.0)
    assert pot.config()["avg_num_neighbors"] == pytest.approx(8.0)
    assert average_num_neighbors(samples) == pytest.approx(8.0)
    rms = force_rms(samples)
    assert 0.3 < float(pot.energy_scale) < 3.0 and abs(float(pot.energy_scale) - rms) / rms < 0.3
    assert summary["valid_forces_mae_mev_per_a"] > 0 and math.isfinite(summary["valid_energy_mae_mev_per_atom"])


def test_early_stopping_and_time_budget(tmp_path):
    # lr = 0: the validation loss never improves after the first validation
    s = train(tiny_config(tmp_path / "a", optim={"lr": 0.0, "max_epochs": 50, "early_stopping_patience": 3}))
    assert s["stopped_by"] == "early_stopping" and s["epochs"] == 4
    s = train(tiny_config(tmp_path / "b", optim={"max_epochs": 1000, "max_time_minutes": 1e-4}))
    assert s["stopped_by"] == "max_time_minutes" and s["epochs"] < 1000


def test_float64_training_with_validation_and_test_files(tmp_path):
    cfg = tiny_config(tmp_path / "run", dtype="float64", optim={"max_epochs": 2},
                      data={"valid": str(DATA / "test_MD.xyz"), "test": str(DATA / "test_MD.xyz"), "index": "0:6",
                            "n_train": 5, "n_valid": None})
    s = train(cfg)
    pot = geoff.load(tmp_path / "run" / "best.pt")
    assert pot.reference_energies.dtype == torch.float64 and s["epochs"] == 2
    assert s["steps"] == 2 * 2  # 5 training structures in batches of 4
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == 2 and "test_forces_mae_mev_per_a" in s  # the test file is evaluated at the end


def test_geoff_train_command(tmp_path, capsys):
    import yaml

    from geoff.cli.main import main

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path / "run", optim={"max_epochs": 2})))
    assert main(["train", str(path)]) == 0
    out = capsys.readouterr().out
    assert "force MAE" in out and (tmp_path / "run" / "best.pt").is_file()
    # resuming a finished run with a higher epoch limit continues it
    assert main(["train", "--resume", str(tmp_path / "run"), "--max-epochs", "3"]) == 0
    assert len(list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))) == 3
    # unknown keys are errors, not silently ignored
    path.write_text(yaml.safe_dump({**tiny_config(tmp_path / "x"), "optim": {"learning_rate": 1.0}}))
    assert main(["train", str(path)]) == 2
    assert "learning_rate" in capsys.readouterr().err


def test_periodic_training_with_stress(tmp_path):
    """Energy + forces + stress loss on periodic copper cells labelled by ASE's EMT."""
    import ase.io
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    rng = np.random.default_rng(0)
    for k in range(8):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.set_cell(a.cell * (1 + 0.02 * rng.normal()), scale_atoms=True)
        a.rattle(0.05, seed=k)
        a.calc = EMT()
        e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress()
        a.calc = SinglePointCalculator(a, energy=e, forces=f, stress=s)
        frames.append(a)
    path = tmp_path / "cu.xyz"
    ase.io.write(path, frames, format="extxyz")
    cfg = tiny_config(tmp_path / "run", data={"train": str(path), "index": ":", "n_train": 6, "n_valid": 2,
                                               "isolated_atoms": None},
                      model={"cutoff": 4.0}, loss={"stress_weight": 10.0}, optim={"max_epochs": 2, "batch_size": 2})
    s = train(cfg)
    pot = geoff.load(tmp_path / "run" / "best.pt")
    assert pot.species == ["Cu"] and s["steps"] == 2 * 3 and math.isfinite(s["best_valid_loss"])
    # least-squares reference energy (one composition): the mean energy per atom of the training split
    per_atom = [a.get_potential_energy() / 4 for a in frames]
    assert min(per_atom) < pot.reference_energy_dict()["Cu"] < max(per_atom)


def test_lr_anneals_over_the_end_of_the_time_budget():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    s = WarmupPlateau(opt, base_lr=1.0, warmup_steps=0, min_lr=0.01)
    for factor, lr in ((1.0, 1.0), (0.5, 0.5), (0.001, 0.01), (0.0, 0.01)):
        s.step(factor)
        assert opt.param_groups[0]["lr"] == pytest.approx(lr)
