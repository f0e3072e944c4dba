"""Time one geoff model on one system along one path (run by benchmarks/run.py).

    .venv/bin/python benchmarks/worker.py --model geoff-egnn --system water-1536 --path torch

Paths (each step includes everything an MD step needs from the potential):
    torch    structure → graph (neighbour list rebuilt every call) → energy + forces
             through ``Potential.forward`` (plain PyTorch, eager); for *-compiled models
             through ``geoff.CompiledPotential`` (open molecules ≤ 32 atoms: the complete
             graph, no neighbour list, as GeoffCalculator(compile=True) does).
    ase      one ase.md.VelocityVerlet step with ``geoff.GeoffCalculator`` (its
             force call, the neighbour list inside it, and the integrator).
    openmm   one OpenMM VerletIntegrator step with geoff's TorchForce (openmm-torch:
             the TorchScript module, no Python per step) on OpenMM's CPU platform.
    openmm-py  the same with geoff's openmm.PythonForce backend (OpenMM calls geoff's
             eager PyTorch module from Python every step; for *-compiled models the
             PythonForce runs geoff.CompiledPotential, i.e. compile=True).

Weights are random (seeded): speed does not depend on their values.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from systems import make_system  # noqa: E402

SPECIES = ["H", "C", "N", "O"]

#: geoff models of the table: name -> (constructor name, keyword arguments).
GEOFF_MODELS = {
    "geoff-egnn-small": ("EGNNPotential", dict(cutoff=5.0, hidden=32, num_layers=2, num_basis=8)),
    # the shipped ethanol-egnn's size (hidden 64 x 4 layers, 118 k parameters)
    "geoff-egnn": ("EGNNPotential", dict(cutoff=5.0, hidden=64, num_layers=4, num_basis=8)),
    # the same model through geoff.CompiledPotential (torch.compile of energy + forces, frozen
    # weights, C++ wrapper); compiled in build(), outside the timed and memory-measured steps
    "geoff-egnn-compiled": ("EGNNPotential", dict(cutoff=5.0, hidden=64, num_layers=4, num_basis=8)),
    "geoff-se3": ("SE3TransformerPotential", dict(cutoff=5.0)),
    "geoff-se3-compiled": ("SE3TransformerPotential", dict(cutoff=5.0)),
}
COMPLETE_GRAPH_ATOMS = 32  # the calculator's default: open molecules up to this size skip the neighbour list


def compiled(name: str) -> bool:
    return name.endswith("-compiled")


def build_potential(name: str, dtype: str, device: str):
    import torch
    import geoff

    cls_name, kwargs = GEOFF_MODELS[name]
    cls = getattr(geoff, cls_name, None)
    if cls is None:
        raise RuntimeError(f"geoff.{cls_name} does not exist in this checkout")
    torch.manual_seed(0)
    return cls(species=SPECIES, **kwargs).to(getattr(torch, dtype)).to(device).eval()


def torch_step(pot, atoms, args):
    import torch
    from geoff import CompiledPotential, complete_graph, keys, structures_to_graph

    dtype = getattr(torch, args.dtype)
    cuda = args.device.startswith("cuda")
    model = pot
    make_graph = lambda: structures_to_graph([atoms], pot.cutoff, dtype=dtype, device=args.device)  # noqa: E731
    if compiled(args.model):
        model = CompiledPotential(pot)
        if not atoms.pbc.any() and len(atoms) <= COMPLETE_GRAPH_ATOMS:
            make_graph = lambda: complete_graph(atoms.positions, atoms.numbers, dtype=dtype, device=args.device)  # noqa: E731

    def step():
        out = model(make_graph(), compute_forces=True)
        out[keys.FORCES].detach().cpu()
        if cuda:
            torch.cuda.synchronize()

    compile_s = timed_first_step(step) if compiled(args.model) else None  # before the harness measures
    graph = make_graph()
    return step, int(graph["edge_index"].shape[1]), compile_s


def timed_first_step(step) -> float:
    import time

    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


def ase_step(pot, atoms, args):
    from ase import units
    from ase.md.velocitydistribution import thermalize_momenta
    from ase.md.verlet import VelocityVerlet
    import geoff

    atoms.calc = geoff.GeoffCalculator(pot, device=args.device, compile=compiled(args.model))
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.RandomState(0))
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    def step():
        dyn.run(1)

    compile_s = timed_first_step(step) if compiled(args.model) else None  # before the harness measures
    return step, None, compile_s


def openmm_step(pot, atoms, args, backend: str = "torchforce"):
    """One VerletIntegrator step of an OpenMM System whose only force is geoff's."""
    try:
        from geoff.openmm.md import build_simulation_system
    except ImportError as exc:
        raise RuntimeError(f"geoff.openmm is not importable ({exc}); OpenMM path skipped") from exc
    import openmm
    from openmm import unit

    options = {"compile": True} if compiled(args.model) else {}
    system, _ = build_simulation_system(atoms, pot, backend=backend, device=args.device, **options)
    integrator = openmm.VerletIntegrator(0.5 * unit.femtoseconds)
    if args.device == "cpu":
        platform = openmm.Platform.getPlatformByName("CPU")
        props = {"Threads": str(args.threads)}
    else:
        platform, props = openmm.Platform.getPlatformByName("CUDA"), {}
    context = openmm.Context(system, integrator, platform, props)
    context.setPositions(atoms.positions / 10.0)  # Å → nm (OpenMM's unit; the adapter converts back)
    context.setVelocitiesToTemperature(300.0, 0)

    def step(context=context):  # the closure keeps the Context alive (the integrator needs it)
        integrator.step(1)

    compile_s = timed_first_step(step) if compiled(args.model) else None  # before the harness measures
    return step, None, compile_s


def openmm_py_step(pot, atoms, args):
    return openmm_step(pot, atoms, args, backend="pythonforce")


PATHS = {"torch": torch_step, "ase": ase_step, "openmm": openmm_step, "openmm-py": openmm_py_step}


def build(args):
    pot = build_potential(args.model, args.dtype, args.device)
    atoms = make_system(args.system)
    step, edges, compile_s = PATHS[args.path](pot, atoms, args)
    n_params = sum(p.numel() for p in pot.parameters())
    return {"step": step, "atoms": len(atoms), "edges": edges, "params": n_params,
            "periodic": bool(atoms.pbc.any()), "compile_s": compile_s}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.common_arguments(parser)
    args = parser.parse_args(argv)
    return harness.run_cell(args, build)


if __name__ == "__main__":
    sys.exit(main())
