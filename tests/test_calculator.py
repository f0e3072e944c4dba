"""The ASE calculator with real ASE optimisers and integrators."""

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import calculate_numerical_stress
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

import geoff
from geoff import GeoffInputError
from tests.structures import SPECIES, ethanol, triclinic


@pytest.fixture(scope="module")
def potential():
    torch.manual_seed(0)
    return geoff.EGNNPotential(SPECIES, cutoff=4.0, hidden=16, num_layers=2, energy_scale=5.0).double()


def test_results_match_the_potential(potential, tmp_path):
    atoms = ethanol()
    atoms.calc = geoff.GeoffCalculator(potential)
    e = atoms.get_potential_energy()
    assert atoms.get_potential_energy(force_consistent=True) == e
    assert np.isclose(atoms.get_potential_energies().sum(), e, rtol=1e-12, atol=1e-12)
    assert atoms.get_forces().shape == (9, 3)
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()
    path = geoff.save(potential, tmp_path / "p.pt")
    other = ethanol()
    other.calc = geoff.GeoffCalculator(str(path))  # a path works as well as a model
    assert other.get_potential_energy() == e


def test_stress_in_voigt_order(potential):
    atoms = triclinic()
    atoms.calc = geoff.GeoffCalculator(potential)
    s = atoms.get_stress()
    full = atoms.get_stress(voigt=False)
    assert s.shape == (6,) and np.allclose(full, full.T)
    # ASE's own numerical stress (finite strain) agrees
    num = calculate_numerical_stress(atoms, eps=1e-5)
    assert np.max(np.abs(num - s)) <= 1e-7 * max(1.0, np.abs(s).max())


def test_optimiser_lowers_energy(potential):
    atoms = ethanol()
    atoms.calc = geoff.GeoffCalculator(potential)
    e0 = atoms.get_potential_energy()
    # a random potential need not have a sensible minimum: take a few short steps only
    BFGS(atoms, logfile=None, maxstep=0.02).run(fmax=1e-4, steps=8)
    assert atoms.get_potential_energy() < e0


def test_nve_conserves_energy(potential):
    """0.5 fs velocity Verlet, 400 steps: the total energy fluctuates by O(dt²) and does not drift."""
    atoms = ethanol()
    atoms.calc = geoff.GeoffCalculator(potential)
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    etot, epot = [], []
    for _ in range(40):
        dyn.run(10)
        epot.append(atoms.get_potential_energy())
        etot.append(epot[-1] + atoms.get_kinetic_energy())
    t_ps = np.arange(1, 41) * 10 * 0.5e-3
    drift = np.polyfit(t_ps, etot, 1)[0] * 1000 / len(atoms)  # meV/atom/ps
    print(f"NVE drift {drift:+.4f} meV/atom/ps, E_tot std {np.std(etot) * 1000 / len(atoms):.4f} meV/atom, "
          f"E_pot std {np.std(epot) * 1000 / len(atoms):.3f} meV/atom")
    assert np.std(epot) > 0.01  # the potential does exchange energy with the kinetic term
    assert np.std(etot) < 0.01 * np.std(epot)
    assert abs(drift) < 1.0


def test_bad_inputs_have_clear_errors(potential):
    calc = geoff.GeoffCalculator(potential)
    nitrogen = Atoms("NH3", positions=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    nitrogen.calc = calc
    with pytest.raises(GeoffInputError, match=r"\['N'\] are not known.*\['H', 'C', 'O'\]"):
        nitrogen.get_potential_energy()
    nan = ethanol()
    nan.positions[0, 0] = np.inf
    nan.calc = calc
    with pytest.raises(GeoffInputError, match="NaN or infinite"):
        nan.get_potential_energy()
    no_cell = ethanol()
    no_cell.pbc = True
    no_cell.calc = calc
    with pytest.raises(GeoffInputError, match="cell"):
        no_cell.get_potential_energy()
    close = Atoms("OH", positions=[[0, 0, 0], [0.1, 0, 0]])
    close.calc = calc
    with pytest.raises(GeoffInputError, match="0.100 Å apart"):
        close.get_potential_energy()
    with pytest.raises(GeoffInputError, match="unknown element symbol"):
        geoff.EGNNPotential(["H", "Qq"])


def test_verlet_list_matches_rebuilding_every_step(potential):
    from ase.md.langevin import Langevin

    atoms = triclinic()
    atoms.calc = geoff.GeoffCalculator(potential, skin=0.5)
    dyn = Langevin(atoms, timestep=0.5 * units.fs, temperature_K=600, friction=0.02, fixcm=False, rng=np.random.default_rng(1))
    reference = geoff.GeoffCalculator(potential, skin=0.0)
    for _ in range(30):
        dyn.run(5)
        f = atoms.get_forces()
        e = atoms.get_potential_energy()
        assert np.isclose(reference.get_potential_energy(atoms), e, rtol=1e-12, atol=1e-12)
        assert np.allclose(reference.get_forces(atoms), f, rtol=0, atol=1e-12)
    assert 1 <= atoms.calc.neighbour_list.builds < reference.neighbour_list.builds == 30


def test_fast_change_detection_agrees_with_ase(potential):
    """GeoffCalculator.check_state answers 'changed' exactly when ASE's own comparison does."""
    from ase.calculators.calculator import Calculator

    atoms = ethanol()
    calc = geoff.GeoffCalculator(potential)
    atoms.calc = calc
    atoms.get_forces()
    edits = [
        lambda a: None,
        lambda a: a.positions.__setitem__((0, 0), a.positions[0, 0] + 1e-9),
        lambda a: a.set_cell(np.eye(3) * 10.0),
        lambda a: a.set_pbc(True),
        lambda a: a.set_initial_charges(np.ones(len(a))),
        lambda a: a.set_atomic_numbers(np.roll(a.numbers, 1)),
    ]
    for edit in edits:
        other = atoms.copy()
        edit(other)
        ours = calc.check_state(other)
        theirs = Calculator.check_state(calc, other)
        assert bool(ours) == bool(theirs), (ours, theirs)
    e0 = atoms.get_potential_energy()
    atoms.positions[3] += 0.05
    assert atoms.get_potential_energy() != e0  # moved atoms are recomputed
