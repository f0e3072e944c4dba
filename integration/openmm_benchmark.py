"""Steps/s of geoff in OpenMM: TorchForce (forces from the module, or energy only) vs PythonForce,
and the neighbour-list strategies, on ethanol and a periodic water box.

    OMP_NUM_THREADS=1 .venv/bin/python integration/openmm_benchmark.py --platform CPU --steps 200

On the CPU/Reference platforms steps/s is from the process's CPU time (one thread), so a busy
shared machine does not skew the comparison; on CUDA it is wall time.

Prints a table and writes runs/openmm-benchmark/results.json and results.png.
Same random-weight EGNN (hidden 32, 3 layers, cutoff 5 Å) for every row.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def steps_per_s(atoms, pot, platform, steps, **options):
    import openmm
    from openmm import unit

    from geoff.openmm.md import build_simulation_system

    system, _ = build_simulation_system(atoms, pot, **options)
    integrator = openmm.VerletIntegrator(0.5 * unit.femtosecond)
    plat = openmm.Platform.getPlatformByName(platform)
    props = {"Threads": "1"} if platform == "CPU" else {}
    ctx = openmm.Context(system, integrator, plat, props)
    ctx.setPositions(atoms.positions / 10.0)
    ctx.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    integrator.step(max(2, steps // 10))  # warm-up (TorchScript profiling runs)
    t0, c0 = time.perf_counter(), time.process_time()
    integrator.step(steps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # On a CPU platform with one thread (OMP_NUM_THREADS=1, Threads=1) the process's CPU time is
    # what the step costs, whatever else the machine runs; on a GPU, wall time is the measure.
    return steps / (cpu if platform in ("CPU", "Reference") else wall)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--platform", default="CPU")
    p.add_argument("--steps", type=int, default=200, help="timed steps for ethanol (water box: steps / 20)")
    p.add_argument("--box-nm", type=float, default=1.6)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", default="runs/openmm-benchmark")
    args = p.parse_args(argv)

    from ase.build import molecule

    from _openmm_common import pick_potential
    from openmm_water_box_nvt import water_atoms

    pot = pick_potential("random")
    systems = {"ethanol (9 atoms)": (molecule("CH3CH2OH"), args.steps),
               None: (water_atoms(args.box_nm), max(5, args.steps // 20))}
    water = systems.pop(None)
    systems[f"water box ({len(water[0])} atoms)"] = water
    variants = [
        ("torchforce, forces from module", dict(backend="torchforce", outputs_forces=True)),
        ("torchforce, energy only", dict(backend="torchforce", outputs_forces=False)),
        ("pythonforce", dict(backend="pythonforce")),
        ("torchforce, dense pairs", dict(backend="torchforce", neighbour_list="dense")),
        ("torchforce, all-pairs cutoff", dict(backend="torchforce", neighbour_list="pairs")),
        ("torchforce, cell list", dict(backend="torchforce", neighbour_list="cells")),
    ]
    results = []
    for name, (atoms, steps) in systems.items():
        # variants interleaved, repeated, median: a shared machine's load drifts during a run
        samples = {label: [] for label, _ in variants}
        for _ in range(args.repeats):
            for label, options in variants:
                samples[label].append(steps_per_s(atoms, pot, args.platform, steps, **options))
        for label, _ in variants:
            sps = float(np.median(samples[label]))
            results.append({"system": name, "variant": label, "steps_per_s": sps, "samples": samples[label],
                            "ns_per_day_0.5fs": sps * 0.5 * 86400 / 1e6})
            print(f"{name:24s} {label:32s} {sps:9.2f} steps/s  {sps * 0.5 * 86400 / 1e6:8.3f} ns/day "
                  f"(median of {args.repeats})", flush=True)

    from geoff.io import atomic_path

    os.makedirs(args.output, exist_ok=True)
    with atomic_path(os.path.join(args.output, "results.json")) as tmp:
        tmp.write_text(json.dumps({"platform": args.platform, "results": results}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(systems), figsize=(11, 4))
    for ax, name in zip(axes, systems):
        rows = [r for r in results if r["system"] == name]
        ax.barh([r["variant"] for r in rows], [r["steps_per_s"] for r in rows])
        ax.set_title(name)
        ax.set_xlabel(f"steps/s ({args.platform})")
    fig.tight_layout()
    with atomic_path(os.path.join(args.output, "results.png")) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return results


if __name__ == "__main__":
    main()
