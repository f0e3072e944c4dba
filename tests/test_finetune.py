"""Fine-tuning a saved potential: reference energies re-fitted to the new data,
frozen parameters unchanged, species kept, elements the potential lacks refused."""

import numpy as np
import pytest
import torch

import geoff
from geoff.errors import GeoffInputError
from geoff.training import train
from geoff.training.data import precompute_edges, read_dataset
from geoff.training.finetune import _predict_energies, finetune, refit_reference_energies

from test_training import DATA, _one_thread, tiny_config  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.skipif(not (DATA / "train_eth_meth.xyz").exists(), reason="ethanol data not available")


@pytest.fixture(scope="module")
def ethanol_potential(tmp_path_factory):
    run = tmp_path_factory.mktemp("ethanol")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(tiny_config(run, optim={"max_epochs": 3}))
    finally:
        torch.set_num_threads(n)
    return run / "best.pt"


def test_refit_reference_energies_removes_the_mean_residual(ethanol_potential):
    pot = geoff.load(ethanol_potential, dtype=torch.float64)
    samples = read_dataset(DATA / "train_eth_meth.xyz", config_types=["methanol"], index="0:10")
    precompute_edges(samples, pot.cutoff)
    energies = np.array([s.energy for s in samples])
    before = energies - _predict_energies(pot, samples)
    shifts = refit_reference_energies(pot, samples)
    after = energies - _predict_energies(pot, samples)
    assert set(shifts) == {"H", "C", "O"}
    assert abs(after.mean()) < 1e-6 * abs(before.mean()) + 1e-9
    assert np.std(after) == pytest.approx(np.std(before), rel=1e-6)  # a constant shift for one composition


def test_finetune_on_methanol_keeps_species_and_frozen_weights(ethanol_potential, tmp_path):
    start = geoff.load(ethanol_potential)
    s = finetune(ethanol_potential, str(DATA / "train_eth_meth.xyz"), {
        "run_dir": str(tmp_path / "ft"), "progress": False, "plots": False, "seed": 1,
        "data": {"config_types": ["methanol"], "index": "0:20", "n_train": 8, "n_valid": 4},
        "optim": {"max_epochs": 3, "lr": 1e-2},
        "finetune": {"freeze": ["embedding", "layers.0"]},
    })
    assert s["epochs"] == 3
    tuned = geoff.load(tmp_path / "ft" / "best.pt")
    assert tuned.species == start.species and tuned.cutoff == start.cutoff
    a, b = start.state_dict(), tuned.state_dict()
    for k in a:
        if k.startswith("embedding.") or k.startswith("layers.0."):
            assert torch.equal(a[k], b[k]), f"frozen {k} changed"
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("layers.1.")), "nothing was trained"
    assert not torch.equal(a["reference_energies"], b["reference_energies"])  # re-fitted


def test_finetune_refuses_unknown_elements_and_bad_freeze(ethanol_potential, tmp_path):
    import ase.io
    from ase import Atoms

    path = tmp_path / "nitrogen.xyz"
    frames = []
    for a in ase.io.read(DATA / "train.xyz", index="0:6"):
        b = Atoms(["N" if z == 8 else int(z) for z in a.numbers], a.positions)
        b.info["energy"] = a.get_potential_energy()
        b.arrays["forces"] = a.get_forces()
        frames.append(b)
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(GeoffInputError, match=r"\['N'\]"):
        finetune(ethanol_potential, str(path), {"run_dir": str(tmp_path / "x"), "progress": False})
    with pytest.raises(GeoffInputError, match="freeze"):
        finetune(ethanol_potential, str(DATA / "train.xyz"), {
            "run_dir": str(tmp_path / "y"), "progress": False, "data": {"index": "0:10"},
            "finetune": {"freeze": ["no_such_layer"]}})


def test_geoff_finetune_command(ethanol_potential, tmp_path, capsys):
    from geoff.cli.main import main

    rc = main(["finetune", str(ethanol_potential), str(DATA / "train.xyz"), "--index", "0:8", "--n-train", "6", "--n-valid", "2",
               "--max-epochs", "2", "--run-dir", str(tmp_path / "ft"), "--no-progress", "--freeze", "embedding"])
    assert rc == 0
    assert "force MAE" in capsys.readouterr().out
    assert geoff.load(tmp_path / "ft" / "best.pt").species == ["H", "C", "O"]


def test_geoff_finetune_twice_into_one_run_dir_is_refused(ethanol_potential, tmp_path, capsys):
    from geoff.cli.main import main

    args = ["finetune", str(ethanol_potential), str(DATA / "train.xyz"), "--index", "0:8", "--n-train", "6",
            "--n-valid", "2", "--max-epochs", "1", "--run-dir", str(tmp_path / "ft"), "--no-progress"]
    assert main(args) == 0
    best = (tmp_path / "ft" / "best.pt").read_bytes()
    capsys.readouterr()
    assert main(args + ["--lr", "1e-2"]) == 2
    err = capsys.readouterr().err
    assert "already holds the results" in err and "--resume" in err and "--overwrite" in err
    assert (tmp_path / "ft" / "best.pt").read_bytes() == best
    assert main(args + ["--lr", "1e-2", "--overwrite"]) == 0
    assert (tmp_path / "ft" / "best.pt").read_bytes() != best
