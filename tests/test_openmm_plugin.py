"""openmm-ml plugin: MLPotential("geoff", model=...) → createSystem and createMixedSystem (ML/MM)."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

import geoff
from geoff.errors import GeoffFileError, GeoffInputError
from geoff.units import EV_TO_KJ_PER_MOL

openmm = pytest.importorskip("openmm")
openmmml = pytest.importorskip("openmmml")
from openmm import app, unit  # noqa: E402
from openmmml import MLPotential  # noqa: E402

from geoff.openmm.forces import have_openmmtorch  # noqa: E402

BACKENDS = ["torchforce", "pythonforce"] if have_openmmtorch() else ["pythonforce"]


@pytest.fixture(scope="module")
def potential_file(tmp_path_factory):
    torch.manual_seed(0)
    pot = geoff.EGNNPotential(["H", "C", "O"], cutoff=3.5, hidden=16, num_layers=2, num_basis=6,
                              energy_scale=2.0, reference_energies={"H": -13.6, "O": -2040.0}).double()
    return geoff.save(pot, tmp_path_factory.mktemp("pot") / "small.pt")


def topology_from_atoms(atoms):
    top = app.Topology()
    chain = top.addChain()
    res = top.addResidue("MOL", chain)
    for k, z in enumerate(atoms.numbers):
        top.addAtom(f"A{k}", app.Element.getByAtomicNumber(int(z)), res)
    if atoms.pbc.any():
        top.setPeriodicBoxVectors([openmm.Vec3(*v) for v in atoms.cell[:] / 10.0] * unit.nanometer)
    return top


def energy_kj(system, positions_nm, platform="Reference", groups=-1):
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName(platform))
    ctx.setPositions(positions_nm)
    return ctx.getState(getEnergy=True, groups=groups).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def ase_energy_kj(path, atoms):
    a = atoms.copy()
    a.calc = geoff.GeoffCalculator(str(path), neighbours="vesin")
    return a.get_potential_energy() * EV_TO_KJ_PER_MOL


def test_entry_point_is_registered():
    assert "geoff" in MLPotential._implFactories


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_create_system_molecule(potential_file, backend, platform):
    eth = molecule("CH3CH2OH")
    eth.rattle(0.05, seed=0)
    system = MLPotential("geoff", model=str(potential_file)).createSystem(topology_from_atoms(eth), backend=backend)
    assert abs(energy_kj(system, eth.positions / 10, platform) - ase_energy_kj(potential_file, eth)) < 1e-6


def test_compile_option_molecule_and_ml_mm(potential_file):
    """MLPotential(..., compile=True): createSystem and createMixedSystem through CompiledPotential."""
    eth = molecule("CH3CH2OH")
    eth.rattle(0.05, seed=1)
    system = MLPotential("geoff", model=str(potential_file)).createSystem(topology_from_atoms(eth), compile=True)
    assert "geoff (pythonforce)" in [f.getName() for f in system.getForces()]
    assert abs(energy_kj(system, eth.positions / 10) - ase_energy_kj(potential_file, eth)) < 1e-6

    ff, modeller = water_box_modeller()
    top = modeller.topology
    pos = np.asarray(modeller.positions.value_in_unit(unit.nanometer))
    mm = ff.createSystem(top, nonbondedMethod=app.PME, nonbondedCutoff=0.5 * unit.nanometer,
                         rigidWater=False, constraints=None)
    ml_atoms = [a.index for r in list(top.residues())[:2] for a in r.atoms()]  # two waters by geoff
    plain, compiled = (MLPotential("geoff", model=str(potential_file), **options).createMixedSystem(
        top, mm, ml_atoms, forceGroup=1) for options in ({"backend": "pythonforce"}, {"compile": True}))
    e_plain, e_compiled = energy_kj(plain, pos, groups=1 << 1), energy_kj(compiled, pos, groups=1 << 1)
    assert abs(e_compiled - e_plain) <= 1e-10 * abs(e_plain)


def water_box_modeller(size_nm=1.2):
    ff = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(ff, boxSize=openmm.Vec3(size_nm, size_nm, size_nm) * unit.nanometer)
    return ff, modeller


def test_create_system_periodic_water(potential_file):
    _, modeller = water_box_modeller()
    pos = np.asarray(modeller.positions.value_in_unit(unit.nanometer))
    box = np.array([[v.value_in_unit(unit.nanometer) for v in (b[0], b[1], b[2])]
                    for b in modeller.topology.getPeriodicBoxVectors()])
    atoms = Atoms(numbers=[a.element.atomic_number for a in modeller.topology.atoms()], positions=pos * 10,
                  cell=box * 10, pbc=True)
    system = MLPotential("geoff", model=str(potential_file)).createSystem(modeller.topology)
    assert abs(energy_kj(system, pos) - ase_energy_kj(potential_file, atoms)) < 1e-9 * abs(ase_energy_kj(potential_file, atoms))


@pytest.mark.parametrize("backend", BACKENDS)
def test_create_mixed_system_removes_mm_terms_inside_ml_region(potential_file, backend):
    ff, modeller = water_box_modeller()
    top = modeller.topology
    pos = np.asarray(modeller.positions.value_in_unit(unit.nanometer))
    mm = ff.createSystem(top, nonbondedMethod=app.PME, nonbondedCutoff=0.5 * unit.nanometer,
                         rigidWater=False, constraints=None)
    ml_atoms = [a.index for a in list(top.residues())[0].atoms()]  # one water by geoff, the rest TIP3P
    mixed = MLPotential("geoff", model=str(potential_file)).createMixedSystem(
        top, mm, ml_atoms, forceGroup=1, backend=backend)

    # the ML force gives the geoff energy of the ML water alone (its images are beyond the cutoff)
    water = Atoms(numbers=[a.element.atomic_number for a in list(top.residues())[0].atoms()],
                  positions=pos[ml_atoms] * 10)
    assert abs(energy_kj(mixed, pos, groups=1 << 1) - ase_energy_kj(potential_file, water)) < 1e-6

    # no MM bond or angle is left inside the ML region, and the rest is the MM energy minus those terms
    ml = set(ml_atoms)
    removed = 0.0
    for force in mm.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            for k in range(force.getNumBonds()):
                i, j, r0, kb = force.getBondParameters(k)
                if i in ml and j in ml:
                    r = np.linalg.norm(pos[i] - pos[j])
                    removed += 0.5 * kb.value_in_unit(unit.kilojoule_per_mole / unit.nanometer ** 2) * (
                        r - r0.value_in_unit(unit.nanometer)) ** 2
        if isinstance(force, openmm.HarmonicAngleForce):
            for k in range(force.getNumAngles()):
                i, j, m, t0, ka = force.getAngleParameters(k)
                if {i, j, m} <= ml:
                    u, v = pos[i] - pos[j], pos[m] - pos[j]
                    theta = np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
                    removed += 0.5 * ka.value_in_unit(unit.kilojoule_per_mole / unit.radian ** 2) * (
                        theta - t0.value_in_unit(unit.radian)) ** 2
    for force in mixed.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            assert not any({*force.getBondParameters(k)[:2]} <= ml for k in range(force.getNumBonds()))
    assert removed > 0
    e_mm = energy_kj(mm, pos)
    e_rest = energy_kj(mixed, pos, groups=~(1 << 1) & 0xFFFFFFFF)
    assert abs(e_rest - (e_mm - removed)) < 1e-4 * abs(e_mm)


def test_bad_input_errors(potential_file, tmp_path):
    with pytest.raises(GeoffInputError, match="needs model"):
        MLPotential("geoff")
    with pytest.raises(GeoffInputError, match="unknown option"):
        MLPotential("geoff", model=str(potential_file), bakend="pythonforce")
    nh3 = molecule("NH3")
    with pytest.raises(GeoffInputError, match=r"\['N'\]"):
        MLPotential("geoff", model=str(potential_file)).createSystem(topology_from_atoms(nh3))
    ff, modeller = water_box_modeller()
    mm = ff.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff)
    with pytest.raises(GeoffInputError, match="empty"):
        MLPotential("geoff", model=str(potential_file)).createMixedSystem(modeller.topology, mm, [])
    with pytest.raises(GeoffInputError, match="out of range"):
        MLPotential("geoff", model=str(potential_file)).createMixedSystem(modeller.topology, mm, [0, 1, 10 ** 6])
    payload = torch.load(potential_file, weights_only=True)
    payload["format_version"] = 2
    bad = tmp_path / "v2.pt"
    torch.save(payload, bad)
    with pytest.raises(GeoffFileError, match="format version 2"):
        MLPotential("geoff", model=str(bad))


def test_interpolated_mixed_system(potential_file):
    """lambda_interpolate = 0 gives the MM energy, 1 the ML/MM energy, and the energy is linear in between."""
    ff, modeller = water_box_modeller()
    top = modeller.topology
    pos = np.asarray(modeller.positions.value_in_unit(unit.nanometer))
    mm = ff.createSystem(top, nonbondedMethod=app.PME, nonbondedCutoff=0.5 * unit.nanometer,
                         rigidWater=False, constraints=None)
    potential = MLPotential("geoff", model=str(potential_file))
    mixed = potential.createMixedSystem(top, mm, [0, 1, 2], interpolate=True)  # backend auto → pythonforce
    ctx = openmm.Context(mixed, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(pos)
    energies = []
    for lam in (0.0, 0.5, 1.0):
        ctx.setParameter("lambda_interpolate", lam)
        energies.append(ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    assert abs(energies[0] - energy_kj(mm, pos)) < 1e-6 * abs(energies[0])
    assert abs(energies[1] - 0.5 * (energies[0] + energies[2])) < 1e-6 * abs(energies[0])
    plain = potential.createMixedSystem(top, mm, [0, 1, 2])
    assert abs(energies[2] - energy_kj(plain, pos)) < 1e-6 * abs(energies[2])
    if have_openmmtorch():
        with pytest.raises(GeoffInputError, match="pythonforce"):
            potential.createMixedSystem(top, mm, [0, 1, 2], interpolate=True, backend="torchforce")
