"""Layer by layer: every EGNN layer maps invariant h to invariant h and equivariant virtual
displacements Δx to equivariant Δx, in float64 to 1e-12 (through the model's ``features`` hook)."""

import numpy as np
import torch

import geoff
from tests.structures import SPECIES, edge_inputs, random_rotation, triclinic


def layer_outputs(model, atoms):
    """Per-layer (h [N, F], Δx [N, 3]) of an EGNNPotential, from its ``features``."""
    return [(h.detach().numpy(), dx.detach().numpy()) for h, dx in model.features(*edge_inputs(model, atoms))]


def test_each_layer_is_equivariant():
    torch.manual_seed(0)
    model = geoff.EGNNPotential(SPECIES, cutoff=3.5, hidden=16, num_layers=3, update_coords=True).double()
    atoms = triclinic()
    rng = np.random.default_rng(5)
    for proper in (True, False):  # rotations and reflections: EGNN is E(3)-equivariant
        R = random_rotation(rng, proper=proper)
        moved = atoms.copy()
        moved.positions = atoms.positions @ R + rng.normal(size=3)
        moved.cell = atoms.cell[:] @ R
        for k, ((h0, dx0), (h1, dx1)) in enumerate(zip(layer_outputs(model, atoms), layer_outputs(model, moved))):
            assert np.max(np.abs(h1 - h0)) <= 1e-12 * max(1.0, np.abs(h0).max()), f"layer {k}: h not invariant"
            if k < len(model.layers) - 1:  # the last layer moves no coordinates
                assert np.abs(dx0).max() > 1e-6, f"layer {k}: no coordinate update to test"
            assert np.max(np.abs(dx1 - dx0 @ R)) <= 1e-12 * max(1.0, np.abs(dx0).max()), f"layer {k}: Δx"
