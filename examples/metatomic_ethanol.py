"""geoff as a metatomic model: export once, run it where geoff is not installed.

    .venv/bin/python examples/metatomic_ethanol.py

1. geoff.metatomic.export (or `geoff export --format metatomic ethanol-egnn ethanol-metatomic.pt`)
   writes an AtomisticModel file: energy in eV, lengths in Å, the neighbour list the engine must
   provide (full, at the potential's cutoff) and the interaction range for domain decomposition.
2. metatomic-ase runs it in a fresh Python process that refuses to import geoff: 100 fs of NVE.
3. The same structure through geoff's own calculator gives the same energy and forces.

Uses the shipped "ethanol-egnn" potential when it is installed, else a random-weight model (the
plumbing is the same; the numbers are not physical).
"""

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import torch
from ase.build import molecule

import geoff
import geoff.metatomic

if "ethanol-egnn" in geoff.shipped_potentials():
    potential = geoff.load("ethanol-egnn")
else:
    torch.manual_seed(0)
    potential = geoff.EGNNPotential(["H", "C", "O"], cutoff=5.0, hidden=32, num_layers=3)
    print("(ethanol-egnn is not installed: using a random-weight model)")

workdir = Path(tempfile.mkdtemp(prefix="geoff-metatomic-"))
path = geoff.metatomic.export(potential, workdir / "ethanol-metatomic.pt")
info = geoff.metatomic.read_export_info(path)
print(f"wrote {path}: types {info['atomic_types']}, neighbour list {info['neighbor_lists'][0]}, "
      f"interaction range {info['interaction_range']} Å, {info['dtype']}")

# 2. a process without geoff: ASE + metatomic-ase only
script = textwrap.dedent("""
    import importlib.abc, json, sys
    class NoGeoff(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "geoff":
                raise ImportError("this process runs the file without geoff")
    sys.meta_path.insert(0, NoGeoff())

    from ase import units
    from ase.build import molecule
    from ase.md.velocitydistribution import thermalize_momenta
    from ase.md.verlet import VelocityVerlet
    import numpy as np
    from metatomic_ase import MetatomicCalculator

    atoms = molecule("CH3CH2OH")
    atoms.calc = MetatomicCalculator("ethanol-metatomic.pt")
    first = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces().tolist())
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    totals = []
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=10)
    dyn.run(200)
    print(json.dumps(dict(first, drift=max(totals) - min(totals))))
""")
run = subprocess.run([sys.executable, "-c", script], cwd=workdir, capture_output=True, text=True, check=True)
out = json.loads(run.stdout.strip().splitlines()[-1])
print(f"metatomic-ase, no geoff in the process: E = {out['energy']:.8f} eV; 100 fs NVE, total energy "
      f"range {1e3 * out['drift']:.3f} meV")

# 3. geoff's own calculator on the same structure
atoms = molecule("CH3CH2OH")
atoms.calc = geoff.GeoffCalculator(potential)
print(f"GeoffCalculator:                        E = {atoms.get_potential_energy():.8f} eV; "
      f"largest force difference {np.abs(atoms.get_forces() - np.array(out['forces'])).max():.2e} eV/Å")
