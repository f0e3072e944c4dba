"""The compiled path (geoff.CompiledPotential, torch.compile) against the eager potential.

Each compilation takes ~10–30 s on 2 cores, so the tests share one small float64
model per structure size and compile as few shapes as they can.
"""

import numpy as np
import pytest
import torch
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase import units

import geoff
from geoff import keys
from geoff.models.compiled import edge_capacity
from tests.structures import SPECIES, ethanol, water_box


@pytest.fixture(scope="module")
def potential():
    torch.manual_seed(0)
    return geoff.EGNNPotential(SPECIES, cutoff=3.5, hidden=16, num_layers=2, energy_scale=3.0).double()


def test_edge_capacity_ladder():
    assert edge_capacity(0) == 64 and edge_capacity(64) == 64
    caps = [edge_capacity(e) for e in range(1, 5000)]
    assert all(c >= e for c, e in zip(caps, range(1, 5000)))
    assert max(c / e for c, e in zip(caps, range(1, 5000)) if e >= 64) <= 1.05  # ≤ 5 % padded work
    assert len(set(caps)) < 100  # and few distinct shapes (compilations) up to 5 000 edges
    assert all(edge_capacity(c) == c for c in set(caps))  # a capacity maps to itself


def test_complete_graph_equals_cutoff_graph(potential):
    """Every ordered pair as an edge: edges beyond r_c add exactly nothing (eager, float64)."""
    atoms = water_box(2)  # 24 atoms, many pairs beyond 3.5 Å once open
    atoms.pbc = False
    full = geoff.complete_graph(atoms.positions, atoms.numbers, dtype=torch.float64)
    cut = geoff.structures_to_graph([atoms], potential.cutoff, dtype=torch.float64)
    assert full[keys.EDGE_INDEX].shape[1] == 24 * 23 > cut[keys.EDGE_INDEX].shape[1]
    a, b = potential(full), potential(cut)
    assert torch.allclose(a[keys.ENERGY], b[keys.ENERGY], rtol=1e-12, atol=0)
    assert torch.allclose(a[keys.FORCES], b[keys.FORCES], rtol=0, atol=1e-12)
    with pytest.raises(geoff.GeoffInputError, match="NaN"):
        geoff.complete_graph(np.full((3, 3), np.nan), [1, 1, 8])


def test_compiled_matches_eager_molecule_and_edge_padding(potential):
    compiled = geoff.CompiledPotential(potential)
    atoms = ethanol(1)
    graph = geoff.complete_graph(atoms.positions, atoms.numbers, dtype=torch.float64)
    ref = potential(graph)
    out = compiled(graph)
    assert compiled.calls_compiled == 1 and compiled.calls_eager == 0
    assert compiled._capacity == 0  # a complete graph is never padded
    scale = float(ref[keys.FORCES].abs().max())
    assert abs(float(out[keys.ENERGY] - ref[keys.ENERGY])) <= 1e-10 * float(ref[keys.ATOMIC_ENERGIES].abs().sum())
    assert float((out[keys.FORCES] - ref[keys.FORCES]).abs().max()) <= 1e-10 * scale
    assert torch.allclose(out[keys.ATOMIC_ENERGIES], ref[keys.ATOMIC_ENERGIES], rtol=1e-10, atol=1e-12)
    # a cutoff graph of the same molecule has fewer edges: padded to the capacity ladder, same result
    cut = geoff.structures_to_graph([atoms], potential.cutoff, dtype=torch.float64)
    assert cut[keys.EDGE_INDEX].shape[1] < 72
    out2 = compiled(cut)
    assert compiled._capacity > cut[keys.EDGE_INDEX].shape[1]
    assert float((out2[keys.FORCES] - ref[keys.FORCES]).abs().max()) <= 1e-10 * scale
    # a moved molecule (same shapes): the compiled function follows the positions
    atoms.positions += np.random.default_rng(0).normal(scale=0.05, size=(9, 3))
    g3 = geoff.complete_graph(atoms.positions, atoms.numbers, dtype=torch.float64)
    assert float((compiled(g3)[keys.FORCES] - potential(g3)[keys.FORCES]).abs().max()) <= 1e-10 * scale
    # stress and batches go to the eager potential
    two = geoff.structures_to_graph([atoms, atoms], potential.cutoff, dtype=torch.float64)
    assert torch.allclose(compiled(two)[keys.ENERGY], potential(two)[keys.ENERGY], rtol=1e-12)
    assert compiled.calls_eager == 1
    # unknown element: the same clear error as the eager potential
    bad = geoff.complete_graph(atoms.positions, [6, 6, 7, 1, 1, 1, 1, 1, 1], dtype=torch.float64)
    with pytest.raises(geoff.GeoffInputError, match="not known to this potential"):
        compiled(bad)


def test_compiled_calculator_periodic_md(potential):
    """ASE MD through the compiled calculator (Verlet list, periodic) = eager, step by step."""
    atoms = water_box(2, seed=3)
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.RandomState(0))
    twin = atoms.copy()
    atoms.calc = geoff.GeoffCalculator(potential, compile=True)
    twin.calc = geoff.GeoffCalculator(potential)
    assert isinstance(atoms.calc.model, geoff.CompiledPotential)
    for dyn_atoms in (atoms, twin):
        VelocityVerlet(dyn_atoms, timestep=1.0 * units.fs).run(20)
    scale = np.abs(twin.get_forces()).max()
    assert np.abs(atoms.get_forces() - twin.get_forces()).max() <= 1e-9 * scale
    assert np.abs(atoms.positions - twin.positions).max() <= 1e-9
    assert atoms.calc.model.calls_compiled >= 20 and atoms.calc.model.calls_eager == 0
    stress = atoms.get_stress()  # stress: eager, and still right
    assert np.allclose(stress, twin.get_stress(), rtol=1e-9, atol=1e-12)


def test_compiled_se3_transformer_matches_eager():
    """The compiled path is model-agnostic: the SE(3)-Transformer (ℓ_max 2) through it, float64."""
    from tests.models_under_test import MODEL_FACTORIES

    model = MODEL_FACTORIES["se3_transformer"](SPECIES, 3.5)
    atoms = ethanol(2)
    graph = geoff.complete_graph(atoms.positions, atoms.numbers, dtype=torch.float64)
    ref, out = model(graph), geoff.CompiledPotential(model)(graph)
    scale = float(ref[keys.FORCES].abs().max())
    assert float((out[keys.FORCES] - ref[keys.FORCES]).abs().max()) <= 1e-10 * scale
    assert abs(float(out[keys.ENERGY] - ref[keys.ENERGY].detach())) <= 1e-10 * float(ref[keys.ATOMIC_ENERGIES].abs().sum())
