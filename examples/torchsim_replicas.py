"""Many ethanol replicas at once with TorchSim: one batched geoff graph per step.

    .venv/bin/python examples/torchsim_replicas.py      # Python >= 3.12 with torch-sim-atomistic

1. 32 replicas, each from its own rattled start, 1 ps of Langevin dynamics at 300 K in one
   TorchSim state (TorchSim's integrator, geoff's forces).
2. FIRE relaxation of all replicas together.
Prints each stage's per-replica temperatures / energies.

Uses the shipped "ethanol-egnn" potential when it is installed, else a random-weight model (the
plumbing is the same; the numbers are not physical).
"""

import numpy as np
import torch
import torch_sim as ts
from ase.build import molecule

import geoff
from geoff.torchsim import GeoffModel

if "ethanol-egnn" in geoff.shipped_potentials():
    potential = geoff.load("ethanol-egnn")
else:
    torch.manual_seed(0)
    potential = geoff.EGNNPotential(["H", "C", "O"], cutoff=5.0, hidden=32, num_layers=3)
    print("(ethanol-egnn is not installed: using a random-weight model)")

model = GeoffModel(potential, device="cpu")   # energies per replica, forces; stress for periodic cells
replicas = []
for k in range(32):
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=k)
    replicas.append(atoms)

# 1. Langevin dynamics, 2 000 steps of 0.5 fs (TorchSim's units: ps and K)
state = ts.initialize_state(replicas, device=model.device, dtype=model.dtype)
state = ts.integrate(system=state, model=model, integrator=ts.Integrator.nvt_langevin, n_steps=2000,
                     timestep=0.0005, temperature=300, pbar={"mininterval": 5})
kinetic = ts.calc_kinetic_energy(masses=state.masses, momenta=state.momenta, system_idx=state.system_idx)
dof = 3 * 9 - 3
temperatures = (2 * kinetic / (dof * 8.617333262e-5)).detach().numpy()  # K (k_B in eV/K)
print(f"after 1 ps at 300 K: replica temperatures {temperatures.mean():.0f} ± {temperatures.std():.0f} K "
      f"(one snapshot each), energies {model(state)['energy'].numpy().round(3)[:4]} ... eV")

# 2. FIRE relaxation of every replica at once
relaxed = ts.optimize(system=state, model=model, optimizer=ts.Optimizer.fire, max_steps=500)
energies = model(relaxed)["energy"].numpy()
print(f"relaxed: {len(energies)} replicas, energies {energies.min():.4f} … {energies.max():.4f} eV "
      f"(spread {1e3 * np.ptp(energies):.2f} meV)")
