"""geoff in TorchSim: many systems stepped at once through one batched graph.

    import torch_sim as ts
    from geoff.torchsim import GeoffModel

    model = GeoffModel("ethanol-egnn", dtype="float64")
    state = ts.initialize_state([atoms] * 64, device=model.device, dtype=model.dtype)
    state = ts.integrate(system=state, model=model, integrator=ts.Integrator.nve, n_steps=100,
                         timestep=0.0005, temperature=300)   # ps, K

Needs ``torch-sim-atomistic`` (Python >= 3.12): ``pip install 'geoff[torchsim]'``.
"""

from .model import AUTO_NEIGHBOUR_LIST, NEIGHBOUR_LISTS, GeoffModel

__all__ = ["AUTO_NEIGHBOUR_LIST", "NEIGHBOUR_LISTS", "GeoffModel"]
