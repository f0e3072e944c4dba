"""Training data: readers (extended XYZ, ASE db, MD17 .npz), key names, units,
splits, reference energies, batching, and the errors raised before training."""

from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms
from ase import units as ase_units

from geoff import keys, structures_to_graph
from geoff.errors import GeoffInputError
from geoff.training import train
from geoff.training.data import (TARGET_ENERGY, TARGET_FORCES, batches, check_samples, check_units, collate,
                                 epoch_order, precompute_edges, read_dataset, split_by_seed, split_isolated_atoms)
from geoff.training.statistics import least_squares_reference_energies

from tests.test_training import DATA, _one_thread, tiny_config  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.skipif(not (DATA / "train.xyz").exists(), reason="ethanol data not available")


def _ethanol(n=3):
    return ase.io.read(DATA / "train.xyz", index=f"0:{n}")


def test_extended_xyz_energies_and_forces():
    frames = _ethanol()
    samples = read_dataset(DATA / "train.xyz", index="0:3")
    assert len(samples) == 3
    for a, s in zip(frames, samples):
        assert s.energy == pytest.approx(a.get_potential_energy(), rel=1e-14)
        np.testing.assert_allclose(s.forces, a.get_forces(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(s.positions, a.positions, rtol=0, atol=0)
        assert s.stress is None and s.config_type == "Training_set"


def test_custom_key_names_stress_and_ase_database(tmp_path):
    frames = []
    for k, a in enumerate(_ethanol(2)):
        b = Atoms(a.numbers, a.positions, cell=np.eye(3) * 12.0, pbc=True)
        b.info["dft_energy"] = -10.0 - k
        b.info["dft_stress"] = np.arange(6, dtype=float) * 0.01
        b.arrays["dft_forces"] = np.full((len(b), 3), 0.5 * k)
        frames.append(b)
    path = tmp_path / "custom.xyz"
    ase.io.write(path, frames, format="extxyz")
    samples = read_dataset(path, energy_key="dft_energy", forces_key="dft_forces", stress_key="dft_stress")
    assert [s.energy for s in samples] == [-10.0, -11.0]
    np.testing.assert_allclose(samples[1].forces, 0.5)
    xx, yy, zz, yz, xz, xy = np.arange(6) * 0.01  # Voigt order
    np.testing.assert_allclose(samples[0].stress, [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    # an ASE database (energies and forces from the stored calculator)
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.db import connect

    db = connect(tmp_path / "data.db")
    for a in _ethanol(2):
        b = Atoms(a.numbers, a.positions)
        b.calc = SinglePointCalculator(b, energy=a.get_potential_energy(), forces=a.get_forces())
        db.write(b)
    samples = read_dataset(tmp_path / "data.db")
    assert samples[1].energy == pytest.approx(_ethanol(2)[1].get_potential_energy())
    np.testing.assert_allclose(samples[1].forces, _ethanol(2)[1].get_forces(), atol=1e-12)


def test_md17_npz_layout_and_units(tmp_path):
    frames = _ethanol(4)
    kcal = ase_units.kcal / ase_units.mol
    path = tmp_path / "md17.npz"
    np.savez(path, R=np.stack([a.positions for a in frames]), z=frames[0].numbers,
             E=np.array([[a.get_potential_energy() / kcal] for a in frames]),
             F=np.stack([a.get_forces() / kcal for a in frames]))
    with pytest.raises(GeoffInputError, match="energy unit"):
        read_dataset(path)
    samples = read_dataset(path, energy_unit="kcal/mol")
    assert len(samples) == 4
    assert samples[2].energy == pytest.approx(frames[2].get_potential_energy(), rel=1e-12)
    np.testing.assert_allclose(samples[2].forces, frames[2].get_forces(), atol=1e-10)
    # rMD17 names
    np.savez(tmp_path / "rmd17.npz", coords=np.stack([a.positions for a in frames]),
             nuclear_charges=frames[0].numbers, energies=np.zeros(4), forces=np.zeros((4, 9, 3)))
    assert len(read_dataset(tmp_path / "rmd17.npz", energy_unit="eV")) == 4
    # the frame selection applies to .npz files as to any other
    assert [s.source for s in read_dataset(path, energy_unit="kcal/mol", index="1:3")] == \
        [f"{path}[1]", f"{path}[2]"]
    assert read_dataset(path, energy_unit="kcal/mol", index="-1")[0].energy == samples[3].energy


def test_split_by_seed_and_isolated_atoms():
    samples = read_dataset(DATA / "train.xyz", index="0:30")
    a_train, a_valid = split_by_seed(samples, 20, 5, 0.1, seed=7)
    b_train, b_valid = split_by_seed(samples, 20, 5, 0.1, seed=7)
    c_train, _ = split_by_seed(samples, 20, 5, 0.1, seed=8)
    assert [s.source for s in a_train] == [s.source for s in b_train]
    assert [s.source for s in a_train] != [s.source for s in c_train]
    assert not {s.source for s in a_train} & {s.source for s in a_valid}
    with pytest.raises(GeoffInputError, match="cannot take"):
        split_by_seed(samples, 28, 5, 0.1, seed=0)
    rest, e0 = split_isolated_atoms(read_dataset(DATA / "isolated_atoms.xyz"))
    assert rest == [] and set(e0) == {"H", "C", "N", "O"}
    assert e0["H"] == pytest.approx(-13.568422383046626)


def test_least_squares_reference_energies_recover_known_values():
    rng = np.random.default_rng(0)
    true = {"H": -13.6, "C": -1025.3, "O": -2035.6}
    samples = []
    for _ in range(12):
        counts = {"H": rng.integers(1, 7), "C": rng.integers(0, 4), "O": rng.integers(0, 3)}
        symbols = "".join(s * int(n) for s, n in counts.items())
        a = Atoms(symbols, positions=rng.normal(size=(len(symbols), 3)) * 3)
        s = read_like(a, sum(true[x] * int(n) for x, n in counts.items()))
        samples.append(s)
    fit = least_squares_reference_energies(samples, ["H", "C", "O"])
    for k, v in true.items():
        assert fit[k] == pytest.approx(v, abs=1e-8)


def read_like(atoms, energy):
    from geoff.training.data import Sample

    return Sample(numbers=atoms.numbers, positions=atoms.positions, cell=np.zeros((3, 3)),
                  pbc=np.zeros(3, bool), energy=float(energy))


def test_collate_matches_structures_to_graph():
    frames = _ethanol(3)
    samples = read_dataset(DATA / "train.xyz", index="0:3")
    precompute_edges(samples, 3.0)
    batch = collate(samples, torch.float64)
    graph = structures_to_graph(frames, 3.0, dtype=torch.float64)
    for k in (keys.POSITIONS, keys.ATOMIC_NUMBERS, keys.BATCH, keys.NUM_ATOMS, keys.CELL, keys.PBC):
        assert torch.equal(batch[k], graph[k]), k
    as_set = lambda g: {tuple(e) for e in g[keys.EDGE_INDEX].T.tolist()}  # noqa: E731
    assert as_set(batch) == as_set(graph) and len(as_set(batch)) == batch[keys.EDGE_INDEX].shape[1]
    assert batch[TARGET_ENERGY].shape == (3,) and batch[TARGET_FORCES].shape == (27, 3)


def test_epoch_order_is_a_function_of_seed_and_epoch():
    assert np.array_equal(epoch_order(50, 1, 3), epoch_order(50, 1, 3))
    assert not np.array_equal(epoch_order(50, 1, 3), epoch_order(50, 1, 4))
    assert sorted(epoch_order(50, 1, 3)) == list(range(50))
    assert [len(b) for b in batches(np.arange(10), 4)] == [4, 4, 2]


def test_errors_before_training(tmp_path):
    samples = read_dataset(DATA / "train.xyz", index="0:2")
    with pytest.raises(GeoffInputError, match=r"\['O'\].*species"):
        check_samples(samples, ["H", "C"], True, True, False, "training")
    bare = tmp_path / "no_forces.xyz"
    ase.io.write(bare, [Atoms(a.numbers, a.positions) for a in _ethanol(6)], format="extxyz")
    cfg = tiny_config(tmp_path / "run", data={"train": str(bare), "index": ":", "n_train": 4, "n_valid": 2})
    with pytest.raises(GeoffInputError, match="no energy"):
        train(cfg)
    cfg["loss"] = {"energy_weight": 0.0}
    with pytest.raises(GeoffInputError, match="no forces"):
        train(cfg)
    # energies in kcal/mol read as eV against isolated-atom energies in eV: mixed units
    kcal = ase_units.kcal / ase_units.mol
    mixed = [Atoms(a.numbers, a.positions) for a in _ethanol(2)]
    for b, a in zip(mixed, _ethanol(2)):
        b.info["energy"] = a.get_potential_energy() / kcal
    mixed_path = tmp_path / "mixed.xyz"
    ase.io.write(mixed_path, mixed, format="extxyz")
    _, e0 = split_isolated_atoms(read_dataset(DATA / "isolated_atoms.xyz"))
    with pytest.raises(GeoffInputError, match="different units"):
        check_units(read_dataset(mixed_path), e0, "training")
    check_units(samples, e0, "training")  # consistent units pass
    # species the model is told about must cover the data
    cfg = tiny_config(tmp_path / "run2", model={"species": ["H", "C"]})
    with pytest.raises(GeoffInputError, match="lack"):
        train(cfg)
    with pytest.raises(GeoffInputError, match="does not exist"):
        read_dataset(tmp_path / "missing.xyz")
    assert Path(DATA / "train.xyz").exists()


def _md17(tmp_path, name, n=6, **change):
    frames = _ethanol(n)
    arrays = {"R": np.stack([a.positions for a in frames]), "z": frames[0].numbers,
              "E": np.array([a.get_potential_energy() for a in frames]),
              "F": np.stack([a.get_forces() for a in frames])}
    arrays.update({k: v(arrays[k]) for k, v in change.items()})
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return path


BAD_NPZ = [  # name, change, words of the error
    ("forces_m3n", {"F": lambda f: f.transpose(0, 2, 1)}, r"forces have shape \(6, 3, 9\); expected \[M, N, 3\]"),
    ("fewer_forces", {"F": lambda f: f[:4]}, "4 force frames for 6 frames"),
    ("fewer_energies", {"E": lambda e: e[:5]}, "5 energies for 6 frames"),
    ("forces_one_atom_more", {"F": lambda f: np.concatenate([f, f[:, :1]], axis=1)},
     r"forces have shape \(6, 10, 3\); expected \[M, N, 3\] = \[6, 9, 3\]"),
    ("positions_flat", {"R": lambda r: r.reshape(len(r), -1)}, r"positions have shape \(6, 27\); expected \[M, N, 3\]"),
    ("energies_2d", {"E": lambda e: np.stack([e, e], axis=1)}, r"energies have shape \(6, 2\); expected \[M\]"),
]


@pytest.mark.parametrize("name,change,words", BAD_NPZ, ids=[b[0] for b in BAD_NPZ])
def test_md17_npz_with_wrong_shapes_is_refused_by_train_finetune_and_evaluate(tmp_path, capsys, name, change, words):
    """One check of the array shapes (in geoff.training.data), the same error from every command."""
    from geoff.cli.main import main

    path = _md17(tmp_path, name, **change)
    with pytest.raises(GeoffInputError, match=words):
        read_dataset(path, energy_unit="eV")
    cfg = tiny_config(tmp_path / "run", data={"train": str(path), "energy_unit": "eV", "index": ":", "n_train": 4,
                                              "n_valid": 2})
    with pytest.raises(GeoffInputError, match=words):
        train(cfg)
    assert not (tmp_path / "run").exists()
    for argv in (["evaluate", "ethanol-egnn", str(path), "--energy-unit", "eV", "--output", str(tmp_path / "ev")],
                 ["finetune", "ethanol-egnn", str(path), "--energy-unit", "eV", "--run-dir", str(tmp_path / "ft")]):
        assert main(argv) == 2, argv[0]
        err = capsys.readouterr().err
        assert f"geoff {argv[0]}: error: {path}:" in err and "Traceback" not in err, err


def test_shapes_of_ase_frames_and_hand_made_samples_are_checked(tmp_path):
    from geoff.training.data import Sample, check_shapes

    frames = []
    for a in _ethanol(2):
        b = Atoms(a.numbers, a.positions)
        b.info["energy"] = a.get_potential_energy()
        b.arrays["forces_x"] = a.get_forces()[:, 0]  # one component per atom: not forces
        frames.append(b)
    path = tmp_path / "one_component.xyz"
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(GeoffInputError, match=r"forces array of shape \[9\] for 9 atoms; expected \[N, 3\]"):
        read_dataset(path, forces_key="forces_x")
    s = read_dataset(DATA / "train.xyz", index="0:1")[0]
    s.forces = s.forces[:8]
    with pytest.raises(GeoffInputError, match=r"forces array of shape \[8, 3\] for 9 atoms"):
        check_shapes([s])
    with pytest.raises(GeoffInputError, match="positions array"):
        check_samples([Sample(numbers=s.numbers, positions=s.positions.T, cell=s.cell, pbc=s.pbc)], ["H", "C", "O"],
                      False, False, False, "training")
