"""Fine-tuning a saved potential: reference energies re-fitted to the new data,
frozen parameters unchanged, species kept, elements the potential lacks added."""

import numpy as np
import pytest
import torch
import yaml

import geoff
from geoff.errors import GeoffInputError
from geoff.training import train
from geoff.training.data import precompute_edges, read_dataset
from geoff.training.finetune import _predict_energies, add_elements, finetune, refit_reference_energies

from tests.structures import SHARED_DATA
from tests.test_training import DATA, _one_thread, tiny_config  # noqa: F401 (autouse fixture)

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


def test_add_elements_keeps_every_trained_row(ethanol_potential):
    pot = geoff.load(ethanol_potential, dtype=torch.float64)
    grown = add_elements(pot, ["N"])
    assert grown.species == ["H", "C", "O", "N"]
    a, b = pot.state_dict(), grown.state_dict()
    assert torch.equal(b["embedding.weight"][:3], a["embedding.weight"])
    # N (Z = 7) starts from its nearest known elements, C (6) and O (8)
    assert torch.allclose(b["embedding.weight"][3], a["embedding.weight"][1:3].mean(0), rtol=0, atol=1e-15)
    assert float(b["reference_energies"][3]) == 0.0
    # on structures without the new element nothing changes
    samples = read_dataset(DATA / "train.xyz", index="0:4")
    precompute_edges(samples, pot.cutoff)
    from geoff.training.data import collate

    batch = collate(samples, torch.float64)
    before, after = pot(batch), grown(batch)
    assert torch.allclose(before["energy"], after["energy"], rtol=1e-12, atol=0)
    assert torch.allclose(before["forces"], after["forces"], rtol=0, atol=1e-12)


@pytest.mark.skipif(not (SHARED_DATA / "3bpa" / "train_300K.xyz").exists(), reason="3BPA data (../shared) not available")
def test_finetune_adds_a_new_element(ethanol_potential, tmp_path):
    """3BPA (C12H12N2O, a different level of theory) on an H/C/O potential: N is added,
    the reference energies come from the 3BPA isolated atoms, and N is trained."""
    bpa = SHARED_DATA / "3bpa"
    s = finetune(ethanol_potential, str(bpa / "train_300K.xyz"), {
        "run_dir": str(tmp_path / "ft"), "progress": False, "plots": False, "seed": 1,
        "data": {"index": "0:10", "n_train": 6, "n_valid": 4, "isolated_atoms": str(bpa / "iso_atoms.xyz")},
        "optim": {"max_epochs": 2, "lr": 1e-2},
    })
    assert s["epochs"] == 2
    tuned = geoff.load(tmp_path / "ft" / "best.pt")
    assert tuned.species == ["H", "C", "O", "N"]
    import ase.io

    iso = {a.get_chemical_symbols()[0]: a.get_potential_energy() for a in ase.io.read(bpa / "iso_atoms.xyz", ":")}
    shifts = yaml.safe_load((tmp_path / "ft" / "config.yaml").read_text())["finetune"]["reference_energy_shifts"]
    for e in "HCNO":  # isolated-atom energy plus the least-squares refit
        assert tuned.reference_energy_dict()[e] == pytest.approx(iso[e] + shifts[e], abs=1e-4)
    start = geoff.load(ethanol_potential)
    assert not torch.equal(tuned.state_dict()["embedding.weight"][3],
                           start.state_dict()["embedding.weight"][1:3].mean(0))  # N's row was trained
    atoms = ase.io.read(bpa / "train_mixedT.xyz", index=0)
    atoms.calc = geoff.GeoffCalculator(tuned)
    assert np.isfinite(atoms.get_potential_energy())


def test_finetune_refuses_a_bad_freeze(ethanol_potential, tmp_path):
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


def test_finetune_refuses_a_committee(ethanol_potential, tmp_path):
    from geoff.io import build_committee

    path = tmp_path / "committee.pt"
    geoff.save(build_committee([ethanol_potential, ethanol_potential]), path)
    with pytest.raises(GeoffInputError, match="committee build"):
        finetune(path, str(DATA / "train.xyz"), {"run_dir": str(tmp_path / "ft"), "progress": False})
    assert not (tmp_path / "ft").exists()
