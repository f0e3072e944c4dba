"""The shared physics battery, applied to every model in MODEL_FACTORIES.

Tolerances come from floating point: float64 symmetry errors must be
≤ 1e-10 relative, float32 ≤ 1e-5 relative.
"""

import numpy as np
import pytest
import torch
from ase.build import make_supercell

from geoff import keys, structures_to_graph
from tests.models_under_test import MODEL_FACTORIES
from tests.structures import CUTOFF, SPECIES, ethanol, random_rotation, triclinic, water_box

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
SYSTEMS = {"ethanol": ethanol, "triclinic": triclinic}


@pytest.fixture(params=sorted(MODEL_FACTORIES), scope="module")
def model(request):
    return MODEL_FACTORIES[request.param](SPECIES, CUTOFF)


def evaluate(model, atoms, dtype=torch.float64, stress=False):
    model = model.to(dtype)
    g = structures_to_graph([atoms], model.cutoff, dtype=dtype)
    out = model(g, compute_forces=True, compute_stress=stress)
    e = out[keys.ENERGY].detach().double().numpy()[0]
    f = out[keys.FORCES].detach().double().numpy()
    s = out[keys.STRESS].detach().double().numpy()[0] if stress else None
    return e, f, s, out[keys.ATOMIC_ENERGIES].detach().double().numpy()


def rel(a, b, scale):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) / scale


def energy_scale(atomic):
    return float(np.sum(np.abs(atomic))) + 1e-30


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_rotation_translation(model, system, dtype):
    rng = np.random.default_rng(1)
    atoms = SYSTEMS[system]()
    e0, f0, _, a0 = evaluate(model, atoms, dtype)
    R = random_rotation(rng)
    moved = atoms.copy()
    moved.positions = atoms.positions @ R + rng.normal(scale=3.0, size=3)
    if atoms.pbc.any():
        moved.cell = atoms.cell[:] @ R
    e1, f1, _, _ = evaluate(model, moved, dtype)
    assert rel(e1, e0, energy_scale(a0)) <= TOL[dtype]
    assert rel(f1, f0 @ R, np.abs(f0).max()) <= TOL[dtype] * 10  # forces: one derivative, ~10x the rounding


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_reflection(model, system):
    rng = np.random.default_rng(2)
    atoms = SYSTEMS[system]()
    e0, f0, _, a0 = evaluate(model, atoms)
    R = random_rotation(rng, proper=False)
    mirrored = atoms.copy()
    mirrored.positions = atoms.positions @ R
    if atoms.pbc.any():
        mirrored.cell = atoms.cell[:] @ R
    e1, f1, _, _ = evaluate(model, mirrored)
    if model.reflection_invariant:
        assert rel(e1, e0, energy_scale(a0)) <= 1e-10
        assert rel(f1, f0 @ R, np.abs(f0).max()) <= 1e-9
    else:  # an SE(3)-only model distinguishes mirror images
        assert rel(e1, e0, energy_scale(a0)) > 1e-8


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_permutation(model, system, dtype):
    atoms = SYSTEMS[system]()
    perm = np.random.default_rng(3).permutation(len(atoms))
    e0, f0, _, a0 = evaluate(model, atoms, dtype)
    e1, f1, _, _ = evaluate(model, atoms[perm], dtype)
    assert rel(e1, e0, energy_scale(a0)) <= TOL[dtype]
    assert rel(f1, f0[perm], np.abs(f0).max()) <= TOL[dtype] * 10


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_forces_are_minus_energy_gradient(model, system):
    atoms = SYSTEMS[system]()
    _, f, _, _ = evaluate(model, atoms)
    h = 1e-5  # central differences: truncation ~h²·E''' ≈ 1e-10, rounding ~1e-16/h ≈ 1e-11
    fd = np.zeros_like(f)
    for a in range(len(atoms)):
        for k in range(3):
            p, m = atoms.copy(), atoms.copy()
            p.positions[a, k] += h
            m.positions[a, k] -= h
            fd[a, k] = -(evaluate(model, p)[0] - evaluate(model, m)[0]) / (2 * h)
    assert np.max(np.abs(fd - f)) <= 1e-7 * max(1.0, np.abs(f).max())


@pytest.mark.parametrize("system", ["triclinic"])
def test_stress_is_strain_derivative(model, system):
    atoms = SYSTEMS[system]()
    _, _, s, _ = evaluate(model, atoms, stress=True)
    h = 1e-5
    fd = np.zeros((3, 3))
    vol = atoms.get_volume()
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = h / (1 if a == b else 2)
            out = []
            for sign in (1, -1):
                st = atoms.copy()
                st.set_cell(atoms.cell[:] @ (np.eye(3) + sign * eps), scale_atoms=True)
                out.append(evaluate(model, st)[0])
            fd[a, b] = (out[0] - out[1]) / (2 * h) / vol
    fd = 0.5 * (fd + fd.T)
    assert np.max(np.abs(fd - s)) <= 1e-7 * max(1.0, np.abs(s).max())


def test_periodic_supercell_and_wrapping(model):
    atoms = triclinic()
    e1, f1, s1, a1 = evaluate(model, atoms, stress=True)
    sc = make_supercell(atoms, 2 * np.eye(3))
    e8, f8, s8, _ = evaluate(model, sc, stress=True)
    assert rel(e8 / 8, e1, energy_scale(a1)) <= 1e-10
    # make_supercell repeats the cell's atoms in order, image by image
    assert rel(f8, np.tile(f1, (8, 1)), np.abs(f1).max()) <= 1e-9
    assert rel(s8, s1, np.abs(s1).max()) <= 1e-9
    shifted = atoms.copy()
    shifted.positions += np.array([2, -1, 3]) @ atoms.cell[:] * 1.0  # whole-cell translations of every atom
    shifted.positions[0] += atoms.cell[1]  # and one atom by a lattice vector
    e2, f2, _, _ = evaluate(model, shifted)
    assert rel(e2, e1, energy_scale(a1)) <= 1e-10
    assert rel(f2, f1, np.abs(f1).max()) <= 1e-9


def test_smooth_across_cutoff(model):
    from ase import Atoms

    isolated = sum(evaluate(model, Atoms(s))[0] for s in ("O", "H"))
    for delta, e_tol in ((1e-3, 1e-6), (1e-5, 1e-12)):
        inside = evaluate(model, Atoms("OH", positions=[[0, 0, 0], [model.cutoff - delta, 0, 0]]))
        outside = evaluate(model, Atoms("OH", positions=[[0, 0, 0], [model.cutoff + delta, 0, 0]]))
        assert abs(outside[0] - isolated) <= 1e-12
        # the envelope vanishes with its first two derivatives: E - E_far ~ δ³, F ~ δ²
        assert abs(inside[0] - isolated) <= e_tol
        assert np.abs(inside[1]).max() <= 1e3 * delta ** 2
        assert np.abs(outside[1]).max() == 0.0


def test_isolated_atom_and_batch_equals_single(model):
    from ase import Atoms

    structures = [ethanol(), triclinic(), water_box(2), Atoms("C")]
    g = structures_to_graph(structures, model.cutoff, dtype=torch.float64)
    out = model(g, compute_forces=True)
    start = 0
    for k, atoms in enumerate(structures):
        e, f, _, a = evaluate(model, atoms)
        assert rel(out[keys.ENERGY][k].item(), e, energy_scale(a)) <= 1e-12
        fk = out[keys.FORCES][start:start + len(atoms)].detach().numpy()
        assert np.max(np.abs(fk - f)) <= 1e-12 * max(1.0, np.abs(f).max())
        start += len(atoms)
    assert np.all(evaluate(model, Atoms("C"))[1] == 0.0)


def test_torchscript_matches_eager(model):
    scripted = torch.jit.script(model)
    for atoms in (ethanol(), triclinic()):
        g = structures_to_graph([atoms], model.cutoff, dtype=torch.float64)
        a = model(g, compute_forces=True, compute_stress=bool(atoms.pbc.all()))
        b = scripted(g, compute_forces=True, compute_stress=bool(atoms.pbc.all()))
        for key in a:
            assert torch.allclose(a[key], b[key], rtol=1e-12, atol=1e-12), key


@pytest.mark.parametrize("system", sorted(SYSTEMS))
def test_edges_beyond_cutoff_contribute_nothing(model, system):
    """The contract behind Verlet (skin) lists: extra edges longer than the cutoff change nothing."""
    atoms = SYSTEMS[system]()
    exact = structures_to_graph([atoms], model.cutoff, dtype=torch.float64)
    padded = structures_to_graph([atoms], model.cutoff + 1.0, dtype=torch.float64)
    assert padded[keys.EDGE_INDEX].shape[1] > exact[keys.EDGE_INDEX].shape[1]
    a = model(exact, compute_stress=bool(atoms.pbc.all()))
    b = model(padded, compute_stress=bool(atoms.pbc.all()))
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-12, atol=1e-12), key
