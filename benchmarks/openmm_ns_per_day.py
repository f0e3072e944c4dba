"""ns/day in OpenMM: geoff vs. a MACE model of comparable size through openmm-ml, same systems, same run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/openmm_ns_per_day.py            # prints one table (~4 min)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/openmm_ns_per_day.py --save  # + results/openmm-ns-per-day.md

Issue 7, part 6. Every cell is one fresh process running the same OpenMM simulation:
CPU platform with ``Threads=1`` (and OMP_NUM_THREADS=1, one torch thread), a
``LangevinMiddleIntegrator`` at 300 K, 1/ps friction, 0.5 fs, velocities drawn at 300 K
(seeded), an all-ML ``System`` from ``openmmml.MLPotential(...).createSystem(topology)``.

Rows (random, seeded weights: speed does not depend on their values):
  geoff-egnn         geoff.EGNNPotential(["H","C","O"], cutoff 5 Å, hidden 64, 3 layers), saved with
                     geoff.save, through MLPotential("geoff", model=PATH): geoff's default backend
                     (TorchForce, TorchScript module inside OpenMM's C++) and backend="pythonforce".
                     Runs in this interpreter's venv (.venv).
  geoff ethanol-egnn the shipped potential (hidden 64, 4 layers; ethanol only), default backend.
  ..., compile=True  MLPotential("geoff", model=..., compile=True): the PythonForce runs
                     geoff.CompiledPotential (torch.compile); the compilation is part of the set-up
                     (the first step), not of the timed steps.
  mace-small         mace-torch 0.3.16 MACE, 128x0e, max_ell 3, correlation 3, 2 interactions, r 5 Å (the
                     mace-small of benchmarks/run.py, built by benchmarks/peers/runner.py), float32, saved
                     whole with torch.save (what openmm-ml 1.8's macepotential.py torch.load()s), through
                     MLPotential("mace", modelPath=PATH). openmm-ml 1.8 runs MACE as an openmm.PythonForce
                     (neighbour list by MACE's get_neighborhood, model call, every step). Runs in
                     benchmarks/.venv-peers (bash benchmarks/peers/setup.sh), in a subprocess; geoff never
                     imports MACE and the peer venv has no geoff.

Timing: after one set-up step and a warm-up (step chunks doubled until one takes ≥ 0.5 s: TorchScript profiling
runs, MACE's e3nn code paths), ``--repeats`` chunks of the same number of steps, each sized to
take about ``--seconds``; steps/s is the median over the chunks, from the process's CPU time
(one thread everywhere, so a busy shared machine does not skew it; wall time is kept too).
ns/day = steps/s × 0.5 fs × 86 400 s/day. "MACE / geoff" = geoff's steps/s over MACE's (how many
times faster geoff runs the same simulation).

Systems: ethanol (ase.build.molecule("CH3CH2OH"), 9 atoms, no box) and water-192 (64 waters,
periodic 12.4 Å cube, 1.0 g/cm³, benchmarks/systems.py).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS_PYTHON = os.environ.get("PEERS_PYTHON", os.path.join(HERE, ".venv-peers", "bin", "python"))
TIMESTEP_FS = 0.5
TEMPERATURE_K = 300.0
SYSTEMS = ["ethanol", "water-192"]
# (row name, model, backend, systems it runs on)
ROWS = [
    ("geoff-egnn 64×3 (default backend)", "geoff-egnn", "auto", SYSTEMS),
    ("geoff-egnn 64×3", "geoff-egnn", "pythonforce", SYSTEMS),
    ("geoff ethanol-egnn (shipped, 64×4)", "ethanol-egnn", "auto", ["ethanol"]),
    ("geoff ethanol-egnn (shipped, 64×4), compile=True", "ethanol-egnn", "compiled", ["ethanol"]),
    ("geoff-egnn 64×3, compile=True", "geoff-egnn", "compiled", ["water-192"]),
    ("mace-small (openmm-ml 1.8 backend)", "mace-small", "mace", SYSTEMS),
]


# ----------------------------------------------------------------------------- one cell (any venv)

def build_atoms(name):
    if name == "ethanol":
        from ase.build import molecule

        return molecule("CH3CH2OH")
    sys.path.insert(0, HERE)
    from systems import make_system

    return make_system(name)


def topology_of(atoms):
    """An OpenMM Topology of ``atoms`` (waters as HOH residues, anything else one residue)."""
    import numpy as np
    from openmm import app, unit

    top = app.Topology()
    chain = top.addChain()
    symbols = atoms.get_chemical_symbols()
    water = len(symbols) % 3 == 0 and symbols == ["O", "H", "H"] * (len(symbols) // 3)
    res = None
    for i, z in enumerate(atoms.numbers):
        if res is None or (water and i % 3 == 0):
            res = top.addResidue("HOH" if water else "MOL", chain)
        top.addAtom(symbols[i], app.Element.getByAtomicNumber(int(z)), res)
    if atoms.pbc.any():
        top.setPeriodicBoxVectors(np.asarray(atoms.cell) / 10.0 * unit.nanometer)
    return top


def time_simulation(atoms, potential, seconds, repeats, seed=1, **create_options):
    import math

    import numpy as np
    import openmm
    from openmm import unit

    topology = topology_of(atoms)
    t_setup = time.perf_counter()
    system = potential.createSystem(topology, **create_options)
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE_K * unit.kelvin, 1.0 / unit.picosecond,
                                                 TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    platform = openmm.Platform.getPlatformByName("CPU")
    context = openmm.Context(system, integrator, platform, {"Threads": "1"})
    if topology.getPeriodicBoxVectors() is not None:
        context.setPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    context.setPositions(atoms.positions / 10.0 * unit.nanometer)
    context.setVelocitiesToTemperature(TEMPERATURE_K * unit.kelvin, seed)
    integrator.step(1)  # the first step loads (and with compile=True compiles) everything: part of the set-up
    setup_s = time.perf_counter() - t_setup
    n = 1
    while True:  # warm-up; its last chunk estimates the cost of a step
        c0 = time.process_time()
        integrator.step(n)
        dt = time.process_time() - c0
        if dt >= 0.5 or n >= 8192:
            break
        n *= 2
    steps = max(3, int(round(seconds * n / max(dt, 1e-9))))
    cpu, wall = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        integrator.step(steps)
        wall.append(steps / (time.perf_counter() - t0))
        cpu.append(steps / (time.process_time() - c0))
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    return {"atoms": len(atoms), "steps": steps, "repeats": repeats, "warmup_steps": 2 * n - 1,
            "steps_per_s": float(np.median(cpu)), "steps_per_s_wall": float(np.median(wall)),
            "samples_cpu": cpu, "samples_wall": wall, "setup_s": setup_s,
            "final_energy_kj_mol": energy, "finite": math.isfinite(energy)}


def cell_geoff(args):
    import torch

    torch.set_num_threads(1)
    import geoff
    from openmmml import MLPotential

    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "geoff-egnn":
            torch.manual_seed(0)
            pot = geoff.EGNNPotential(["H", "C", "O"], cutoff=5.0, hidden=64, num_layers=3)
            path = os.path.join(tmp, "geoff-egnn.pt")
            geoff.save(pot, path)
        else:
            pot, path = geoff.load(args.model), args.model
        params = sum(p.numel() for p in pot.parameters())
        options = {} if args.backend == "auto" else (
            {"compile": True} if args.backend == "compiled" else {"backend": args.backend})
        potential = MLPotential("geoff", model=path, **options)
        result = time_simulation(build_atoms(args.system), potential, args.seconds, args.repeats)
    from geoff.openmm.forces import resolve_backend

    force = "PythonForce, compiled" if args.backend == "compiled" else \
        {"torchforce": "TorchForce", "pythonforce": "PythonForce"}[resolve_backend(args.backend)]
    return dict(result, parameters=params, force=force, dtype=str(next(pot.parameters()).dtype).replace("torch.", ""))


def cell_mace(args):
    # MACE's own e3nn 0.4.4 (benchmarks/peers/runner.py puts it first on sys.path and allows
    # torch.load of e3nn's constants file). openmm-ml 1.8 loads a local MACE model with a plain
    # torch.load(modelPath), which torch >= 2.6 refuses for a whole pickled model unless
    # weights_only is off: the same setting covers it (our own file, written just below).
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    sys.path.insert(0, os.path.join(HERE, "peers"))
    import torch  # before openmm/openmmtorch in this venv, or the Torch plugin fails to load

    torch.set_num_threads(1)
    from types import SimpleNamespace

    import runner

    model = runner._mace_model(SimpleNamespace(dtype="float32"), "128x0e")
    params = sum(p.numel() for p in model.parameters())
    import e3nn
    import mace
    from openmmml import MLPotential

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mace-small.model")
        torch.save(model, path)
        potential = MLPotential("mace", modelPath=path)
        # openmm-ml's default returnEnergyType "interaction_energy" is an output of ScaleShiftMACE only;
        # the plain MACE class returns "energy" (same graph, same cost; its E0s are zero here).
        result = time_simulation(build_atoms(args.system), potential, args.seconds, args.repeats,
                                 returnEnergyType="energy")
    return dict(result, parameters=params, force="PythonForce", dtype="float32",
                versions=f"mace-torch {mace.__version__}, e3nn {e3nn.__version__}")


# ----------------------------------------------------------------------------- driver (.venv)

def run_cell(python, row, system, args):
    name, model, backend, _ = row
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    cmd = [python, os.path.abspath(__file__), "--cell", "--model", model, "--backend", backend,
           "--system", system, "--seconds", str(args.seconds), "--repeats", str(args.repeats)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.cell_timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.cell_timeout} s"}
    except OSError as exc:  # e.g. no benchmarks/.venv-peers
        return {"error": f"cannot run {python}: {exc.strerror}"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return {"error": tail[-1][:200] if tail else f"exit {proc.returncode}"}


def ns_per_day(sps):
    return sps * TIMESTEP_FS * 86400 / 1e6


def table(results):
    lines = ["| system | atoms | model | force | params | steps × repeats | ms/step | steps/s | ns/day | "
             "geoff ÷ MACE (steps/s) | wall steps/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for system in SYSTEMS:
        rows = [(n, r) for (n, s), r in results.items() if s == system]
        mace = next((r for n, r in rows if n.startswith("mace") and "error" not in r), None)
        for name, r in rows:
            if "error" in r:
                lines.append(f"| {system} | | {name} | | | | failed: {r['error']} | | | | |")
                continue
            sps = r["steps_per_s"]
            ratio = "1 (reference)" if name.startswith("mace") else (
                f"{sps / mace['steps_per_s']:.1f}×" if mace else "n/a")
            flag = "" if r["finite"] else " (energy not finite)"
            lines.append(f"| {system} | {r['atoms']} | {name}{flag} | {r['force']} | {r['parameters']:,} | "
                         f"{r['steps']} × {r['repeats']} | {1000 / sps:.2f} | {sps:.2f} | {ns_per_day(sps):.3f} | "
                         f"{ratio} | {r['steps_per_s_wall']:.2f} |")
    return "\n".join(lines)


def header():
    import platform

    import openmm

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(l.split(":", 1)[1].strip() for l in fh if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"OpenMM {openmm.__version__} CPU platform, Threads=1, OMP_NUM_THREADS=1; LangevinMiddleIntegrator "
            f"{TEMPERATURE_K:.0f} K, 1/ps, {TIMESTEP_FS} fs; random weights, float32; steps/s = median over "
            f"repeats, from process CPU time; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{platform.node()}, {cpu}, {os.cpu_count()} cores (shared)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8.0, help="CPU seconds per timed chunk (default 8)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--cell-timeout", type=float, default=300.0)
    p.add_argument("--save", action="store_true", help="also write benchmarks/results/openmm-ns-per-day.md")
    p.add_argument("--cell", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--system", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.cell:
        result = cell_mace(args) if args.model == "mace-small" else cell_geoff(args)
        print("RESULT " + json.dumps(result), flush=True)
        return result

    if not os.path.exists(PEERS_PYTHON):
        print(f"note: {PEERS_PYTHON} missing (bash benchmarks/peers/setup.sh): MACE rows will fail", file=sys.stderr)
    wanted = args.systems.split(",")
    results = {}
    for system in [s for s in SYSTEMS if s in wanted]:
        for row in ROWS:
            if system not in row[3]:
                continue
            python = PEERS_PYTHON if row[1] == "mace-small" else sys.executable
            r = run_cell(python, row, system, args)
            results[(row[0], system)] = r
            msg = r.get("error") or f"{r['steps_per_s']:.2f} steps/s, {ns_per_day(r['steps_per_s']):.3f} ns/day"
            print(f"  {system:10s} {row[0]:38s} {row[2]:12s} {msg}", file=sys.stderr, flush=True)
    versions = next((r["versions"] for r in results.values() if "versions" in r), None)
    text = header() + (f"; MACE: {versions}" if versions else "") + "\n\n" + table(results) + "\n"
    print(text)
    if args.save:
        from geoff.io import atomic_path

        out = os.path.join(HERE, "results", "openmm-ns-per-day.md")
        with atomic_path(out) as tmp:
            tmp.write_text("# OpenMM ns/day: geoff vs. MACE small through openmm-ml\n\n"
                           "`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/openmm_ns_per_day.py --save`\n\n" + text)
    return results


if __name__ == "__main__":
    main()
