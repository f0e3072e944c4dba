"""Shared bits of the OpenMM integration scripts: which potential to run."""

import torch

import geoff


def pick_potential(spec: str, species=("H", "C", "O"), cutoff: float = 5.0):
    """A potential file/shipped name, or "random" (a small random-weight EGNN, for plumbing checks)."""
    if spec != "random":
        return geoff.load(spec)
    torch.manual_seed(0)
    return geoff.EGNNPotential(list(species), cutoff=cutoff, hidden=32, num_layers=3, num_basis=8)


def default_potential() -> str:
    """The shipped ethanol potential when it exists, else "random"."""
    return "ethanol-egnn" if "ethanol-egnn" in geoff.shipped_potentials() else "random"


def report(res, ensemble: str) -> None:
    """Print the figures every integration run reports (an MDResult from geoff.md.log)."""
    print(f"speed            {res.steps_per_s:.2f} steps/s = {res.ns_per_day:.4f} ns/day")
    print(f"energy drift     {res.drift_mev_per_atom_per_ps:+.4f} meV/atom/ps"
          + ("" if ensemble == "nve" else " (thermostatted)"))
    print(f"mean temperature {res.mean_temperature_k:.1f} K")
    print(f"outputs          {res.trajectory}, {res.log}, {res.plot}")
