"""geoff.graph.check_atoms: the one structure check every entry point runs (ASE, OpenMM, graphs)."""

import time

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

import geoff
from geoff import GeoffInputError
from geoff.graph import check_atoms, structures_to_graph
from tests.structures import SPECIES, ethanol, triclinic, water_box


@pytest.fixture(scope="module")
def potential():
    torch.manual_seed(0)
    return geoff.EGNNPotential(SPECIES, cutoff=4.0, hidden=8, num_layers=1).double()


def degenerate_cell():
    """Two of the cell vectors are nearly parallel: the cell is 0.001 Å thick along two of them."""
    return Atoms("H2", positions=[[0, 0, 0], [0.7, 0, 0]], cell=[[10, 0, 0], [10, 0.001, 0], [0, 0, 10]], pbc=True)


def test_sensible_structures_pass(potential):
    for atoms in (ethanol(), triclinic(), water_box(2)):
        check_atoms(atoms, potential)
        check_atoms(atoms)
    # a cubic lattice through skewed (not reduced) vectors: thin faces, but not absurdly thin
    skewed = Atoms("H", cell=[[10, 0, 0], [30, 10, 0], [0, 0, 10]], pbc=True)
    check_atoms(skewed, potential)


def test_each_problem_is_named(potential):
    with pytest.raises(GeoffInputError, match="no atoms"):
        check_atoms(Atoms(), potential)
    nan = ethanol()
    nan.positions[[2, 5], 1] = np.nan
    with pytest.raises(GeoffInputError, match=r"atoms \[2, 5\] are NaN or infinite"):
        check_atoms(nan, potential)
    no_cell = ethanol()
    no_cell.pbc = [False, True, False]
    with pytest.raises(GeoffInputError, match="cell .* is missing or degenerate"):
        check_atoms(no_cell, potential)
    flat = ethanol()
    flat.set_cell([[5, 0, 0], [0, 5, 0], [5, 5, 0]])
    flat.pbc = [True, True, False]
    with pytest.raises(GeoffInputError, match="missing or degenerate"):
        check_atoms(flat, potential)
    with pytest.raises(GeoffInputError, match=r"\['N'\] are not known"):
        check_atoms(Atoms("NH", positions=[[0, 0, 0], [1, 0, 0]]), potential)
    with pytest.raises(GeoffInputError, match="atoms 0 and 1 are 0.200 Å apart"):
        check_atoms(Atoms("OH", positions=[[0, 0, 0], [0.2, 0, 0]]), potential)
    check_atoms(Atoms("OH", positions=[[0, 0, 0], [0.2, 0, 0]]), potential, min_distance=0.1)
    image = Atoms("OH", positions=[[0, 0, 0], [3.9, 0, 0]], cell=np.eye(3) * 4.0, pbc=True)
    with pytest.raises(GeoffInputError, match="periodic image of atom .* 0.100 Å apart"):
        check_atoms(image, potential)


def test_thin_cell_is_refused_naming_its_thickness(potential):
    with pytest.raises(GeoffInputError, match=r"only 0\.001 Å thick .* 0\.1 × the 4 Å cutoff"):
        check_atoms(degenerate_cell(), potential)
    with pytest.raises(GeoffInputError, match=r"only 0\.001 Å thick .* the 5 Å cutoff"):
        check_atoms(degenerate_cell())  # no potential: the generic bound
    with pytest.raises(GeoffInputError, match=r"0\.001 Å thick"):
        structures_to_graph([degenerate_cell()], 4.0)  # the graph builders refuse it too


def test_calculator_refuses_degenerate_cell_at_once():
    """Before: the periodic neighbour search ran for seconds to minutes (≈ 1 GB) on ~5 000 images per
    axis, uninterruptible, then blamed 'atoms 0 and 0'. Now: an immediate error naming the thickness."""
    atoms = degenerate_cell()
    atoms.calc = geoff.GeoffCalculator(geoff.load("ethanol-egnn"))
    start = time.perf_counter()
    with pytest.raises(GeoffInputError, match=r"cell is only 0\.001 Å thick"):
        atoms.get_potential_energy()
    assert time.perf_counter() - start < 1.0


def test_calculator_checks_every_call(potential):
    atoms = bulk("C", "diamond", a=3.57, cubic=True)
    atoms.calc = geoff.GeoffCalculator(potential)
    atoms.get_potential_energy()
    atoms.set_cell([[3.57, 0, 0], [3.57, 1e-4, 0], [0, 0, 3.57]])
    with pytest.raises(GeoffInputError, match="thick"):
        atoms.get_potential_energy()


def test_calculator_refuses_a_structure_in_the_wrong_units_before_the_neighbour_search(potential):
    """A water box in nm read as Å: before, the neighbour search within the cutoff found every pair
    (1 536 atoms: 51 s, 12.7 GB, not interruptible) before the distance check; now the search within
    min_distance runs first and the error is immediate."""
    atoms = water_box(8)
    atoms.set_cell(atoms.cell[:] / 10.0, scale_atoms=True)
    atoms.calc = geoff.GeoffCalculator(potential)
    start = time.perf_counter()
    with pytest.raises(GeoffInputError, match=r"are 0\.09\d Å apart.*nm instead of Å"):
        atoms.get_potential_energy()
    assert time.perf_counter() - start < 1.0
    assert atoms.calc.neighbour_list.builds == 0
