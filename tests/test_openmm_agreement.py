"""OpenMM (Reference and CPU platforms) agrees with the ASE calculator; NVE conserves energy.

Both engines run the same random-weight EGNN potential; OpenMM's energies and
forces are converted back with geoff.units and compared with GeoffCalculator's,
for a molecule and a periodic triclinic box, through TorchForce (energy only and
energy + forces) and PythonForce. float64 agrees to ~1e-10 relative; float32 to
float32 precision (~1e-5 relative).
"""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

import geoff
from geoff.units import EV_PER_ANGSTROM_TO_KJ_PER_MOL_PER_NM, EV_TO_KJ_PER_MOL

openmm = pytest.importorskip("openmm")
from openmm import unit  # noqa: E402

import geoff.openmm as gom  # noqa: E402
from geoff.openmm.forces import have_openmmtorch  # noqa: E402
from tests.models_under_test import MODEL_FACTORIES  # noqa: E402

CUTOFF = 3.5
BACKENDS = [("torchforce", True), ("torchforce", False), ("pythonforce", True)]
if not have_openmmtorch():  # pragma: no cover - depends on the environment
    BACKENDS = [b for b in BACKENDS if b[0] != "torchforce"]


def small_potential(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    pot = geoff.EGNNPotential(["H", "C", "O"], cutoff=CUTOFF, hidden=16, num_layers=3, num_basis=6,
                              energy_scale=2.0, reference_energies={"H": -13.6, "C": -1030.0, "O": -2040.0})
    return pot.to(dtype)


def ethanol():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=0)
    return atoms


def triclinic_box(n=40, seed=0):
    """n random H/C/O atoms (≥1.2 Å apart) in a reduced triclinic cell (OpenMM's form), heights ≥ 2 × cutoff."""
    rng = np.random.default_rng(seed)
    cell = np.array([[11.0, 0.0, 0.0], [3.0, 10.5, 0.0], [-2.0, 2.5, 10.0]])
    probe = Atoms(cell=cell, pbc=True)
    positions = []
    while len(positions) < n:
        p = rng.uniform(size=3) @ cell
        probe = Atoms(positions=positions + [p], cell=cell, pbc=True)
        if not positions or probe.get_distances(len(positions), range(len(positions)), mic=True).min() > 1.2:
            positions.append(p)
    return Atoms(numbers=rng.choice([1, 6, 8], size=n), positions=positions, cell=cell, pbc=True)


def ase_reference(pot, atoms):
    a = atoms.copy()
    a.calc = geoff.GeoffCalculator(pot, neighbours="vesin")
    return a.get_potential_energy(), a.get_forces()


def openmm_energy_forces(pot, atoms, backend, outputs_forces, platform, positions=None, **options):
    periodic = bool(atoms.pbc.any())
    system = openmm.System()
    for m in atoms.get_masses():
        system.addParticle(m)
    if periodic:
        system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*v) for v in atoms.cell[:] / 10.0])
    gom.add_geoff_force(system, pot, atomic_numbers=atoms.numbers, backend=backend, outputs_forces=outputs_forces,
                        periodic=periodic, **options)
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName(platform))
    context.setPositions((atoms.positions if positions is None else positions) / 10.0)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy, np.asarray(forces) / EV_PER_ANGSTROM_TO_KJ_PER_MOL_PER_NM


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
@pytest.mark.parametrize("backend,outputs_forces", BACKENDS)
@pytest.mark.parametrize("system_name", ["ethanol", "triclinic"])
def test_openmm_matches_ase_float64(system_name, backend, outputs_forces, platform):
    atoms = ethanol() if system_name == "ethanol" else triclinic_box()
    pot = small_potential(torch.float64)
    e_ref, f_ref = ase_reference(pot, atoms)
    positions = atoms.positions
    if atoms.pbc.any():  # unwrap some atoms by lattice vectors: only minimum images may matter
        shift = np.random.default_rng(1).integers(-1, 2, size=(len(atoms), 3)) @ atoms.cell[:]
        positions = positions + shift
    e, f = openmm_energy_forces(pot, atoms, backend, outputs_forces, platform, positions)
    scale = np.abs(f_ref).max()
    assert abs(e - e_ref) <= 1e-10 * abs(e_ref) + 1e-9
    # OpenMM stores forces in float32 on the CPU platform; Reference keeps doubles.
    ftol = 1e-6 if platform == "CPU" else 1e-10
    assert np.abs(f - f_ref).max() <= ftol * scale


@pytest.mark.parametrize("system_name", ["ethanol", "triclinic"])
def test_compiled_pythonforce_matches_ase(system_name):
    """compile=True: the PythonForce through geoff.CompiledPotential (float64, Reference platform)."""
    atoms = ethanol() if system_name == "ethanol" else triclinic_box()
    pot = small_potential(torch.float64)
    e_ref, f_ref = ase_reference(pot, atoms)
    positions = atoms.positions
    if atoms.pbc.any():
        positions = positions + np.random.default_rng(2).integers(-1, 2, size=(len(atoms), 3)) @ atoms.cell[:]
    e, f = openmm_energy_forces(pot, atoms, "auto", True, "Reference", positions, compile=True)
    assert abs(e - e_ref) <= 1e-10 * abs(e_ref) + 1e-9
    assert np.abs(f - f_ref).max() <= 1e-10 * np.abs(f_ref).max()
    with pytest.raises(geoff.GeoffInputError, match="PythonForce"):
        openmm_energy_forces(pot, atoms, "torchforce", True, "Reference", compile=True)


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
@pytest.mark.parametrize("system_name", ["ethanol", "triclinic"])
def test_openmm_matches_ase_float32(system_name, platform):
    atoms = ethanol() if system_name == "ethanol" else triclinic_box()
    pot64 = small_potential(torch.float64)
    e_ref, f_ref = ase_reference(pot64, atoms)
    e, f = openmm_energy_forces(small_potential(torch.float32), atoms, "auto", True, platform)
    # float32 round-off of a sum of atomic energies of size |E_ref| and of the forces
    assert abs(e - e_ref) <= 1e-6 * abs(e_ref) + 1e-4
    assert np.abs(f - f_ref).max() <= 2e-5 * np.abs(f_ref).max() + 1e-5


def test_nve_conserves_energy():
    """Velocity Verlet (OpenMM VerletIntegrator, 0.25 fs, 400 steps) keeps the total energy flat."""
    atoms = ethanol()
    pot = small_potential(torch.float64)
    system = openmm.System()
    for m in atoms.get_masses():
        system.addParticle(m)
    gom.add_geoff_force(system, pot, atomic_numbers=atoms.numbers)
    integrator = openmm.VerletIntegrator(0.25 * unit.femtosecond)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(atoms.positions / 10.0)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    totals, kinetic = [], []
    for _ in range(20):
        integrator.step(20)
        s = context.getState(getEnergy=True)
        k = s.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        totals.append(s.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) + k)
        kinetic.append(k)
    totals = np.array(totals)
    # energy exchanged between kinetic and potential is ~ kinetic energy; the total moves far less
    assert np.ptp(totals) < 1e-3 * np.mean(kinetic)
    slope = np.polyfit(np.arange(len(totals)) * 20 * 0.25e-3, totals, 1)[0]  # kJ/mol/ps
    assert abs(slope) < 0.05


@pytest.mark.parametrize("model_name", sorted(MODEL_FACTORIES))
def test_every_model_type_agrees_in_openmm(model_name):
    """Each registered model (tests/models_under_test.py) exports and matches ASE, molecule and triclinic box."""
    pot = MODEL_FACTORIES[model_name](["H", "C", "O"], CUTOFF)
    for atoms in (ethanol(), triclinic_box(n=24, seed=2)):
        e_ref, f_ref = ase_reference(pot, atoms)
        e, f = openmm_energy_forces(pot, atoms, "auto", False, "Reference")
        assert abs(e - e_ref) <= 1e-10 * abs(e_ref) + 1e-9
        assert np.abs(f - f_ref).max() <= 1e-9 * np.abs(f_ref).max() + 1e-12
