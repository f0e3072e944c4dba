"""Every neighbour-list path against a brute-force enumeration of images."""

import itertools

import numpy as np
import pytest
import torch

from geoff import GeoffInputError, arrays_to_graph, keys, structures_to_graph
from geoff.graph.build import HAVE_TORCH_CLUSTER
from geoff.graph.neighbours import cell_list_pairs, cutoff_pairs, dense_pairs, all_ordered_pairs, edge_vectors
from tests.structures import ethanol, random_box, triclinic, water_box


def brute_force(atoms, cutoff):
    """Set of (i, j, S) with |x_j - x_i + S·cell| < cutoff, by looping over a generous image range."""
    pos = atoms.positions
    cell = atoms.cell[:]
    n = [4 if p else 0 for p in atoms.pbc]
    pairs = set()
    for s in itertools.product(*(range(-k, k + 1) for k in n)):
        off = np.array(s) @ cell
        for i in range(len(atoms)):
            for j in range(len(atoms)):
                if i == j and s == (0, 0, 0):
                    continue
                if np.linalg.norm(pos[j] - pos[i] + off) < cutoff:
                    pairs.add((i, j) + tuple(int(v) for v in s))
    return pairs


def as_set(graph):
    ei = graph[keys.EDGE_INDEX].numpy()
    sh = np.rint(graph[keys.EDGE_SHIFTS].numpy()).astype(int)
    got = [(int(i), int(j)) + tuple(int(v) for v in s) for i, j, s in zip(ei[0], ei[1], sh)]
    assert len(got) == len(set(got)), "duplicate edges"
    return set(got)


def methods_for(atoms):
    methods = ["vesin", "all_pairs", "auto"]
    if not atoms.pbc.any() and HAVE_TORCH_CLUSTER:
        methods.append("torch_cluster")
    return methods


def slab():
    atoms = triclinic()
    atoms.pbc = [True, True, False]
    return atoms


@pytest.mark.parametrize("make", [ethanol, triclinic, slab, lambda: water_box(2)],
                         ids=["molecule", "triclinic", "slab", "water"])
@pytest.mark.parametrize("cutoff", [2.0, 4.5, 7.0])
def test_neighbour_lists_match_brute_force(make, cutoff):
    atoms = make()
    ref = brute_force(atoms, cutoff)
    for method in methods_for(atoms):
        g = structures_to_graph([atoms], cutoff, dtype=torch.float64, neighbours=method)
        assert as_set(g) == ref, method


def test_batched_edges_stay_within_structures():
    structures = [ethanol(), triclinic(), ethanol(1)]
    for method in ("vesin", "all_pairs"):
        g = structures_to_graph(structures, 4.0, dtype=torch.float64, neighbours=method)
        b = g[keys.BATCH]
        assert torch.equal(b[g[keys.EDGE_INDEX][0]], b[g[keys.EDGE_INDEX][1]])
        offset = 0
        for k, atoms in enumerate(structures):
            sub = g[keys.EDGE_INDEX][:, b[g[keys.EDGE_INDEX][0]] == k] - offset
            sh = g[keys.EDGE_SHIFTS][b[g[keys.EDGE_INDEX][0]] == k]
            got = {(int(i), int(j)) + tuple(int(v) for v in np.rint(s)) for i, j, s in
                   zip(sub[0], sub[1], sh.numpy())}
            assert got == brute_force(atoms, 4.0)
            offset += len(atoms)


@pytest.mark.skipif(not HAVE_TORCH_CLUSTER, reason="torch-cluster not installed")
def test_torch_cluster_batched_molecules():
    structures = [ethanol(), ethanol(2)]
    a = structures_to_graph(structures, 3.0, dtype=torch.float64, neighbours="torch_cluster")
    b = structures_to_graph(structures, 3.0, dtype=torch.float64, neighbours="all_pairs")
    assert as_set(a) == as_set(b)


def test_all_pairs_is_torchscriptable():
    from geoff.graph.neighbours import all_pairs_edges

    scripted = torch.jit.script(all_pairs_edges)
    atoms = triclinic()
    g = structures_to_graph([atoms], 4.0, dtype=torch.float64, neighbours="all_pairs")
    ei, sh = scripted(g[keys.POSITIONS], g[keys.BATCH], g[keys.NUM_ATOMS], g[keys.CELL], g[keys.PBC], 4.0)
    assert torch.equal(ei, g[keys.EDGE_INDEX]) and torch.equal(sh, g[keys.EDGE_SHIFTS])


def test_bad_structures_are_refused():
    atoms = ethanol()
    atoms.positions[3, 1] = np.nan
    with pytest.raises(GeoffInputError, match="NaN or infinite"):
        structures_to_graph([atoms], 4.0)
    periodic_no_cell = ethanol()
    periodic_no_cell.pbc = True
    with pytest.raises(GeoffInputError, match="cell"):
        structures_to_graph([periodic_no_cell], 4.0)
    with pytest.raises(GeoffInputError, match="agree"):
        arrays_to_graph(np.zeros((3, 3)), [1, 1], cutoff=4.0)


def edge_set(edge_index, shifts, pos, box):
    vectors = edge_vectors(pos, edge_index, shifts, box)
    return sorted((int(a), int(b), *np.round(v, 6).tolist())
                  for a, b, v in zip(edge_index[0], edge_index[1], vectors.numpy()))


@pytest.mark.parametrize("periodic", [False, True])
def test_cell_list_equals_all_pairs(periodic):
    """The O(N) cell list finds exactly the pairs (and vectors) of the O(N²) search, triclinic included."""
    cell = np.array([[13.0, 0.0, 0.0], [4.0, 12.0, 0.0], [-3.0, 3.0, 11.5]])
    atoms = random_box(120, cell, seed=3)
    pos = torch.tensor(atoms.positions)
    if periodic:  # move atoms by whole lattice vectors: nothing may change
        pos = pos + torch.tensor(np.random.default_rng(0).integers(-2, 3, size=(len(atoms), 3)) @ cell)
    box = torch.tensor(cell) if periodic else None
    a = edge_set(*cell_list_pairs(pos, box, 3.5), pos, box)
    b = edge_set(*cutoff_pairs(pos, box, 3.5), pos, box)
    assert len(a) > 100 and a == b


def test_minimum_image_searches_match_brute_force():
    """In an OpenMM reduced box at least 2 × cutoff thick, the minimum-image searches (pairs, cells, and
    the dense list cut at the cutoff) give exactly the (i, j, S) of the all-images enumeration."""
    cell = np.array([[13.0, 0.0, 0.0], [4.0, 12.0, 0.0], [-3.0, 3.0, 11.5]])
    atoms = random_box(60, cell, seed=1)
    ref = brute_force(atoms, 3.5)
    pos, box = torch.tensor(atoms.positions), torch.tensor(cell)
    dense_index, dense_shifts = dense_pairs(pos, all_ordered_pairs(len(atoms), pos.device), box)
    length = torch.linalg.norm(edge_vectors(pos, dense_index, dense_shifts, box), dim=-1)
    dense = (dense_index[:, length < 3.5], dense_shifts[length < 3.5])
    for name, (ei, sh) in {"pairs": cutoff_pairs(pos, box, 3.5), "cells": cell_list_pairs(pos, box, 3.5),
                           "dense": dense}.items():
        got = {(int(i), int(j)) + tuple(int(v) for v in np.rint(s)) for i, j, s in zip(ei[0], ei[1], sh.numpy())}
        assert len(got) == ei.shape[1] and got == ref, name
