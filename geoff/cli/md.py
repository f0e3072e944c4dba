"""Run molecular dynamics with a geoff potential (ASE engine, or OpenMM with --engine openmm).

Example: geoff md ethanol-egnn ethanol --steps 2000 --timestep 0.5 --temperature 300
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("potential", help="potential file (.pt) or shipped name, e.g. ethanol-egnn")
    p.add_argument("structure", help="structure file ase.io reads (last frame), or a molecule name, e.g. ethanol")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    p.add_argument("--temperature", type=float, default=300.0, help="K: initial velocities, and the bath for nvt")
    p.add_argument("--ensemble", choices=["nve", "nvt"], default="nve",
                   help="nve: velocity Verlet (reports energy drift); nvt: Langevin")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs (nvt and equilibration)")
    p.add_argument("--equilibrate", type=int, default=0, metavar="STEPS",
                   help="Langevin steps at --temperature before the recorded run (ASE engine)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None)
    p.add_argument("--output", default="md-run", help="folder for trajectory.traj, energies.csv, energies.png")
    p.add_argument("--log-every", type=int, default=10, help="steps between trajectory frames and energy rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--engine", choices=["ase", "openmm"], default="ase",
                   help="ase (default) or openmm (TorchForce/PythonForce; writes trajectory.dcd)")
    p.add_argument("--platform", default="CPU", help="OpenMM platform (openmm engine): Reference, CPU, CUDA")
    p.add_argument("--backend", choices=["auto", "torchforce", "pythonforce"], default="auto",
                   help="how OpenMM runs geoff (openmm engine)")
    p.add_argument("--compile", action="store_true",
                   help="energy + forces through torch.compile (geoff.CompiledPotential; with the openmm engine "
                   "as a PythonForce); ~20–30 s of compilation first, then 2–5× faster per step (small molecules, large boxes)")
    p.add_argument("--trajectory-format", choices=["dcd", "pdb"], default="dcd", help="openmm engine trajectory")


def run(args) -> int:
    from ..ase import GeoffCalculator
    from ..ase.md import load_structure, run_md

    atoms = load_structure(args.structure)
    if getattr(args, "engine", "ase") == "openmm":
        from ..openmm.md import run_openmm_md

        res = run_openmm_md(atoms, args.potential, steps=args.steps, timestep_fs=args.timestep,
                            temperature_k=args.temperature, ensemble=args.ensemble, friction_per_fs=args.friction,
                            output_dir=args.output, log_every=args.log_every, seed=args.seed,
                            progress=not args.no_progress, platform=args.platform, backend=args.backend,
                            trajectory_format=args.trajectory_format, dtype=args.dtype, device=args.device,
                            compile=getattr(args, "compile", False))
    else:
        calc = GeoffCalculator(args.potential, device=args.device, dtype=args.dtype,
                               compile=getattr(args, "compile", False))
        res = run_md(atoms, calc, steps=args.steps, timestep_fs=args.timestep, temperature_k=args.temperature,
                     ensemble=args.ensemble, friction_per_fs=args.friction, output_dir=args.output,
                     log_every=args.log_every, seed=args.seed, progress=not args.no_progress,
                     equilibration_steps=args.equilibrate)
    print(f"atoms            {len(atoms)}")
    start = f"after {args.equilibrate} steps at {args.temperature} K" if args.equilibrate else \
        f"{args.temperature} K start"
    print(f"steps            {res.steps} x {args.timestep} fs ({args.ensemble.upper()}, {start})")
    print(f"speed            {res.steps_per_s:.1f} steps/s, {res.ns_per_day:.3f} ns/day "
          f"({res.steps_per_s * len(atoms):.0f} atom-steps/s)")
    label = "energy drift" if args.ensemble == "nve" else "energy drift (thermostatted: not conserved)"
    print(f"{label:16s} {res.drift_mev_per_atom_per_ps:+.4f} meV/atom/ps "
          f"(total-energy std {res.energy_fluctuation_mev_per_atom:.4f} meV/atom)")
    print(f"mean temperature {res.mean_temperature_k:.1f} K")
    print(f"trajectory       {res.trajectory}")
    print(f"energy log       {res.log}")
    if res.plot:
        print(f"plot             {res.plot}")
    return 0
