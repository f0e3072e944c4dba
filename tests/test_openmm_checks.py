"""The OpenMM paths run the shared structure check (geoff.graph.check_atoms) when they are given positions."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

import geoff
import geoff.openmm as gom
from geoff.errors import GeoffInputError

openmm = pytest.importorskip("openmm")
openmmml = pytest.importorskip("openmmml")
from openmm import app, unit  # noqa: E402
from openmmml import MLPotential  # noqa: E402

from geoff.cli.main import main  # noqa: E402
from geoff.openmm.forces import add_geoff_force  # noqa: E402


@pytest.fixture(scope="module")
def potential_file(tmp_path_factory):
    torch.manual_seed(0)
    pot = geoff.EGNNPotential(["H", "C", "O"], cutoff=3.5, hidden=8, num_layers=1).double()
    return geoff.save(pot, tmp_path_factory.mktemp("pot") / "small.pt")


def water(separation_angstrom):
    """O, H, H with the first H ``separation_angstrom`` from the O (0: coincident)."""
    return Atoms("OHH", positions=[[0, 0, 0], [separation_angstrom, 0, 0], [0, 0.96, 0]])


def topology(atoms):
    top = app.Topology()
    res = top.addResidue("MOL", top.addChain())
    for k, z in enumerate(atoms.numbers):
        top.addAtom(f"A{k}", app.Element.getByAtomicNumber(int(z)), res)
    return top


@pytest.mark.parametrize("separation", [0.0, 0.01])
def test_close_atoms_are_refused_by_export_and_add_force(potential_file, tmp_path, separation):
    """Before: coincident atoms gave E = nan (then OpenMM's 'coordinate is NaN' exception),
    0.01 Å a finite energy; now a GeoffInputError naming the atoms, before the force exists."""
    atoms = water(separation)
    top = topology(atoms)
    nm = atoms.positions / 10.0
    message = rf"atoms 0 and 1 are {separation:.3f} Å apart"
    with pytest.raises(GeoffInputError, match=message):
        gom.export(potential_file, tmp_path / "m.pt", topology=top, positions=nm)
    assert not (tmp_path / "m.pt").exists()
    system = openmm.System()
    for _ in range(3):
        system.addParticle(1.0)
    with pytest.raises(GeoffInputError, match=message):
        add_geoff_force(system, str(potential_file), topology=top, positions=nm * unit.nanometer,
                        backend="pythonforce")
    assert system.getNumForces() == 0
    with pytest.raises(GeoffInputError, match=message):
        MLPotential("geoff", model=str(potential_file)).createSystem(top, positions=nm * unit.nanometer)
    # a sensible structure passes, and min_distance is the user's to lower
    gom.export(potential_file, tmp_path / "ok.pt", topology=topology(water(0.96)), positions=water(0.96).positions / 10)
    if separation > 0:
        gom.export(potential_file, tmp_path / "low.pt", topology=top, positions=nm, min_distance=0.005)


def test_nan_positions_and_ml_subset(potential_file, tmp_path):
    atoms = molecule("CH3CH2OH") + water(0.0)  # the water's atoms 9 and 10 coincide
    top = topology(atoms)
    nm = atoms.positions / 10.0
    # only the ML atoms are checked: the (MM) water may overlap
    gom.export(potential_file, tmp_path / "sub.pt", topology=top, ml_atoms=range(9), positions=nm)
    with pytest.raises(GeoffInputError, match="ML atoms: atoms 9 and 10 are 0.000 Å apart"):
        gom.export(potential_file, tmp_path / "all.pt", topology=top, positions=nm)
    nm[4, 2] = np.nan
    with pytest.raises(GeoffInputError, match=r"atoms \[4\] are NaN"):
        gom.export(potential_file, tmp_path / "nan.pt", topology=top, ml_atoms=range(9), positions=nm)
    with pytest.raises(GeoffInputError, match=r"atoms \[4\] are NaN"):
        gom.export(potential_file, tmp_path / "nan.pt", topology=top, ml_atoms=[10, 4], positions=nm)
    with pytest.raises(GeoffInputError, match="11 positions for a system of 12 particles"):
        gom.export(potential_file, tmp_path / "short.pt", topology=top, positions=nm[:11])


def test_create_mixed_system_checks_the_ml_atoms(potential_file):
    atoms = molecule("CH3CH2OH") + water(0.96)
    atoms.positions[10] = atoms.positions[9] + [0.01, 0, 0]
    top = topology(atoms)
    mm = openmm.System()
    for _ in range(len(atoms)):
        mm.addParticle(1.0)
    potential = MLPotential("geoff", model=str(potential_file))
    with pytest.raises(GeoffInputError, match="ML atoms: atoms 9 and 10 are 0.010 Å apart"):
        potential.createMixedSystem(top, mm, [9, 10, 11], positions=atoms.positions / 10.0,
                                    backend="pythonforce")
    mixed = potential.createMixedSystem(top, mm, list(range(9)), positions=atoms.positions / 10.0,
                                        backend="pythonforce")
    assert mixed.getNumParticles() == len(atoms)


def test_cli_export_refuses_close_atoms(potential_file, tmp_path, capsys):
    path = tmp_path / "close.xyz"
    water(0.01).write(path)
    assert main(["export", str(potential_file), str(tmp_path / "m.pt"), "--structure", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "atoms 0 and 1 are 0.010 Å apart" in err[0]
    assert not (tmp_path / "m.pt").exists()
