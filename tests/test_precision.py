"""float32 and large coordinates: positions are made local (float64) before any cast to float32.

Before: ethanol translated by 10⁶ Å changed the float32 energy by 0.07 eV and the forces by up to
1.7 eV/Å (0.03 eV/Å at 10⁴ Å), on every path (Verlet list, complete graph, OpenMM module).
"""

import numpy as np
import pytest
import torch

import geoff
from geoff import keys
from geoff.graph import complete_graph, structures_to_graph
from tests.structures import ethanol, triclinic

SHIFT = np.array([1e6, -1e6, 3e5])  # Å


@pytest.fixture(scope="module")
def shipped():
    pot = geoff.load("ethanol-egnn")
    assert pot.reference_energies.dtype == torch.float32
    return pot


def assert_same(e0, f0, e1, f1):
    """Equal to float32 round-off: energy ≤ 1e-6 relative (≈ 8 float32 ulps of |E| ≈ 4 200 eV),
    forces ≤ 1e-5 of the largest force component."""
    assert abs(e1 - e0) <= 1e-6 * abs(e0), (e0, e1)
    assert np.abs(f1 - f0).max() <= 1e-5 * np.abs(f0).max(), np.abs(f1 - f0).max()


def calculator_results(pot, atoms, **kwargs):
    atoms = atoms.copy()
    atoms.calc = geoff.GeoffCalculator(pot, **kwargs)
    return atoms.get_potential_energy(), atoms.get_forces()


@pytest.mark.parametrize("skin", [0.5, 0.0])
def test_calculator_is_translation_invariant_in_float32(shipped, skin):
    atoms = ethanol()
    far = atoms.copy()
    far.positions += SHIFT
    assert_same(*calculator_results(shipped, atoms, skin=skin), *calculator_results(shipped, far, skin=skin))
    # the Verlet list's reuse path (no rebuild after a small move) too
    calc = geoff.GeoffCalculator(shipped, skin=skin)
    moved, far_moved = atoms.copy(), far.copy()
    far_moved.calc = calc
    far_moved.get_potential_energy()
    for a in (moved, far_moved):
        a.positions[2] += [0.05, 0.0, -0.05]
    builds = calc.neighbour_list.builds
    e1, f1 = far_moved.get_potential_energy(), far_moved.get_forces()
    assert calc.neighbour_list.builds == builds + (skin == 0)
    assert_same(*calculator_results(shipped, moved), e1, f1)


def eager(pot, graph):
    out = pot(graph)
    return out[keys.ENERGY].detach().numpy(), out[keys.FORCES].detach().numpy()


def test_complete_graph_and_batches_are_translation_invariant_in_float32(shipped):
    atoms = ethanol()
    e0, f0 = eager(shipped, complete_graph(atoms.positions, atoms.numbers))
    e1, f1 = eager(shipped, complete_graph(atoms.positions + SHIFT, atoms.numbers))
    assert_same(e0[0], f0, e1[0], f1)
    far = atoms.copy()
    far.positions += SHIFT
    e, f = eager(shipped, structures_to_graph([atoms, far, atoms], shipped.cutoff))  # each structure its own origin
    for k in range(3):
        assert_same(e0[0], f0, e[k], f[9 * k:9 * (k + 1)])


def test_periodic_cell_is_translation_invariant_in_float32():
    torch.manual_seed(0)
    pot = geoff.EGNNPotential(["H", "C", "O"], cutoff=3.5, hidden=16, num_layers=2, energy_scale=3.0,
                              reference_energies={"H": -13.6, "C": -1025.0, "O": -2040.0})
    atoms = triclinic()
    far = atoms.copy()
    far.positions += SHIFT  # far outside the cell: not wrapped, shifts follow
    assert_same(*calculator_results(pot, atoms), *calculator_results(pot, far))


@pytest.mark.parametrize("mode", ["dense", "pairs", "cells"])
def test_openmm_module_is_translation_invariant_in_float32(shipped, mode):
    """OpenMM passes positions in float64 (nm); the module subtracts the first ML atom's before casting."""
    gom = pytest.importorskip("geoff.openmm")
    atoms = ethanol()
    module = gom.build_module(shipped, gom.system_spec(atomic_numbers=atoms.numbers), outputs_forces=True,
                              neighbour_list=mode)
    assert module.dtype_name == "float32"
    nm = torch.tensor(atoms.positions / 10.0, dtype=torch.float64)
    e0, f0 = (t.detach().numpy() for t in module(nm))
    e1, f1 = (t.detach().numpy() for t in module(nm + torch.tensor(SHIFT / 10.0)))
    assert_same(float(e0), f0, float(e1), f1)
