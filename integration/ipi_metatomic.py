"""geoff's metatomic file in i-PI: i-PI's own metatomic driver against GeoffCalculator, then an NVE run.

    .venv/bin/python integration/ipi_metatomic.py            # needs `pip install ipi` (i-PI >= 3.0)

1. i-PI's ``MetatomicDriver`` (what ``i-pi-py_driver -m metatomic`` runs) evaluates the exported
   file on an ethanol molecule and on a triclinic periodic box: energy, forces and virial, in
   i-PI's atomic units, converted back with i-PI's own unit table, against GeoffCalculator
   (float64; 1e-10 relative). i-PI's virial is −∂E/∂ε = −V σ with σ ASE's stress.
2. A real i-PI run: the i-PI server (NVE, velocity Verlet, 0.5 fs) and the metatomic driver as a
   separate client process over a UNIX socket (i-PI needs a box: 30 Å, with the molecule's open
   boundaries kept by the driver), ``--steps`` steps of ethanol at 300 K; reports the
   first potential energy (against GeoffCalculator, to the 1e-8 eV i-PI prints) and the range of
   i-PI's conserved quantity.

Prints one JSON line; --output DIR keeps i-PI's input and output files there.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule
from ase.io import write

import geoff
import geoff.metatomic

TRICLINIC = np.array([[9.0, 0.0, 0.0], [2.5, 8.5, 0.0], [-1.5, 2.0, 8.0]])

IPI_INPUT = """<simulation verbosity="low" safe_stride="1000">
  <output prefix="run">
    <properties stride="1" filename="out" flush="1"> [ step, potential{{electronvolt}}, conserved{{electronvolt}},
      temperature{{kelvin}} ] </properties>
  </output>
  <total_steps>{steps}</total_steps>
  <prng><seed>12345</seed></prng>
  <ffsocket name="geoff" mode="unix" pbc="false">
    <address>{address}</address>
  </ffsocket>
  <system>
    <initialize nbeads="1">
      <file mode="xyz" units="angstrom">template.xyz</file>
      <cell mode="abc" units="angstrom"> [30.0, 30.0, 30.0] </cell>
      <velocities mode="thermal" units="kelvin">300</velocities>
    </initialize>
    <forces><force forcefield="geoff"/></forces>
    <ensemble><temperature units="kelvin">300</temperature></ensemble>
    <motion mode="dynamics">
      <dynamics mode="nve"><timestep units="femtosecond">0.5</timestep></dynamics>
    </motion>
  </system>
</simulation>
"""


def small_potential():
    torch.manual_seed(0)
    return geoff.EGNNPotential(["H", "C", "O"], cutoff=3.5, hidden=16, num_layers=3, num_basis=6,
                               energy_scale=2.0).double()


def random_box(n, cell, seed=0, min_dist=1.1):
    rng = np.random.default_rng(seed)
    positions = []
    while len(positions) < n:
        p = rng.uniform(size=3) @ cell
        probe = Atoms(positions=positions + [p], cell=cell, pbc=True)
        if not positions or probe.get_distances(len(positions), range(len(positions)), mic=True).min() > min_dist:
            positions.append(p)
    return Atoms(numbers=rng.choice([1, 6, 8], size=n), positions=positions, cell=cell, pbc=True)


def driver_check(potential, model_path: Path, workdir: Path) -> dict:
    """i-PI's MetatomicDriver vs GeoffCalculator on a molecule and a triclinic box (largest relative error)."""
    from ipi.pes.metatomic import MetatomicDriver
    from ipi.utils.units import unit_to_internal, unit_to_user

    worst = {}
    for name, atoms in (("ethanol", molecule("CH3CH2OH")), ("triclinic", random_box(30, TRICLINIC, seed=3))):
        template = workdir / f"{name}.xyz"
        write(template, atoms)
        driver = MetatomicDriver(str(template), str(model_path))
        cell = atoms.cell[:].T if atoms.pbc.all() else np.zeros((3, 3))  # i-PI: lattice vectors as columns
        pot, force, vir, _ = driver(unit_to_internal("length", "angstrom", cell),
                                    unit_to_internal("length", "angstrom", atoms.positions))
        energy = unit_to_user("energy", "electronvolt", pot)
        forces = unit_to_user("force", "ev/ang", np.asarray(force).reshape(-1, 3))
        ref = atoms.copy()
        ref.calc = geoff.GeoffCalculator(potential)
        errors = {"energy": abs(energy - ref.get_potential_energy()) / abs(ref.get_potential_energy()),
                  "forces": float(np.abs(forces - ref.get_forces()).max() / np.abs(ref.get_forces()).max())}
        if atoms.pbc.all():
            virial = unit_to_user("energy", "electronvolt", np.asarray(vir).reshape(3, 3))
            stress = -virial / atoms.get_volume()
            expected = ref.get_stress(voigt=False)
            errors["stress"] = float(np.abs(stress - expected).max() / np.abs(expected).max())
        worst[name] = errors
    return worst


def socket_run(model_path: Path, workdir: Path, steps: int, timeout: float) -> dict:
    """i-PI server + metatomic driver client over a UNIX socket: NVE of ethanol."""
    atoms = molecule("CH3CH2OH")
    write(workdir / "template.xyz", atoms)
    address = f"geoff-ipi-{os.getpid()}"
    (workdir / "input.xml").write_text(IPI_INPUT.format(steps=steps, address=address))
    bindir = Path(sys.executable).parent
    server = subprocess.Popen([str(bindir / "i-pi"), "input.xml"], cwd=workdir, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(600):  # the server opens the socket first
            if Path(f"/tmp/ipi_{address}").exists() or server.poll() is not None:
                break
            time.sleep(0.1)
        client = subprocess.run([str(bindir / "i-pi-py_driver"), "-u", "-a", address, "-m", "metatomic", "-o",
                                 f"template=template.xyz,model={model_path}"], cwd=workdir, capture_output=True,
                                text=True, timeout=timeout)
        out, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    if server.returncode != 0:
        raise RuntimeError(f"i-PI failed:\n{out[-3000:]}\n{client.stderr[-3000:]}")
    rows = np.loadtxt(workdir / "run.out", ndmin=2)
    return {"steps": int(rows[-1, 0]), "first_potential_ev": float(rows[0, 1]),
            "conserved_range_mev": float(1e3 * np.ptp(rows[:, 2])),
            "mean_temperature_k": float(rows[:, 3].mean())}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--output", default=None, help="keep i-PI's files in this folder")
    args = p.parse_args(argv)
    if shutil.which("i-pi", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit("i-PI is not installed in this environment: pip install ipi")

    workdir = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="geoff-ipi-"))
    workdir.mkdir(parents=True, exist_ok=True)
    potential = small_potential()
    model_path = geoff.metatomic.export(potential, workdir / "geoff-metatomic.pt").resolve()
    result = {"driver_relative_errors": driver_check(potential, model_path, workdir)}
    run = socket_run(model_path, workdir, args.steps, args.timeout)
    ref = molecule("CH3CH2OH")
    ref.calc = geoff.GeoffCalculator(potential)
    run["first_potential_error_ev"] = abs(run["first_potential_ev"] - ref.get_potential_energy())
    result["ipi_nve"] = run
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
