"""Layer by layer (SEED.md): every EGNN layer maps invariant h to invariant h and
equivariant virtual displacements Δx to equivariant Δx, in float64 to 1e-12."""

import numpy as np
import torch

import geoff
from geoff import keys, structures_to_graph
from structures import SPECIES, random_rotation, triclinic


def layer_outputs(model, atoms):
    """Per-layer (h [N, F], Δx [N, 3]) of an EGNNPotential, following its atomic_energies_raw."""
    g = structures_to_graph([atoms], model.cutoff, dtype=torch.float64)
    pos, (i, j) = g[keys.POSITIONS], g[keys.EDGE_INDEX]
    vectors = pos[j] - pos[i] + (g[keys.EDGE_SHIFTS] @ g[keys.CELL][0])
    envelope = model.envelope(torch.linalg.norm(vectors, dim=-1))
    h = model.embedding(model.z_to_species[g[keys.ATOMIC_NUMBERS]])
    out = []
    for layer in model.layers:
        lengths = torch.sqrt((vectors * vectors).sum(-1))
        h, dx = layer(h, vectors, model.radial(lengths), envelope, g[keys.EDGE_INDEX])
        vectors = vectors + dx[j] - dx[i]
        out.append((h.detach().numpy(), dx.detach().numpy()))
    return out


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
