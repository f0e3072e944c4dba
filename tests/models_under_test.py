"""Tiny instances of every geoff model, for the shared physics battery.

Each factory takes (species, cutoff) and returns a float64 model with random
weights; add one entry per model type.
"""

import torch

import geoff


def _egnn(species, cutoff):
    torch.manual_seed(0)
    return geoff.EGNNPotential(species, cutoff=cutoff, hidden=16, num_layers=3, num_basis=6,
                               update_coords=True, energy_scale=2.0).double()


def _egnn_no_coords(species, cutoff):
    torch.manual_seed(1)
    return geoff.EGNNPotential(species, cutoff=cutoff, hidden=16, num_layers=2, num_basis=6,
                               update_coords=False, energy_scale=2.0).double()


def _se3_transformer(species, cutoff):
    torch.manual_seed(2)
    return geoff.SE3TransformerPotential(species, cutoff=cutoff, lmax=2, channels=4, num_layers=3, num_heads=2,
                                         num_basis=6, radial_hidden=8, energy_scale=2.0).double()


def _se3_transformer_e3(species, cutoff):
    torch.manual_seed(3)
    return geoff.SE3TransformerPotential(species, cutoff=cutoff, lmax=2, channels=4, num_layers=3, num_heads=2,
                                         num_basis=6, radial_hidden=8, parity_even=True, energy_scale=2.0).double()


MODEL_FACTORIES = {
    "egnn": _egnn,
    "egnn-invariant": _egnn_no_coords,
    "se3_transformer": _se3_transformer,
    "se3_transformer-parity-even": _se3_transformer_e3,
}
