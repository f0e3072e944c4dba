"""Run molecular dynamics with a geoff potential (ASE engine, or OpenMM with --engine openmm).

Example: geoff md ethanol-egnn ethanol --steps 2000 --timestep 0.5 --temperature 300

Each logged frame is checked (temperature, forces, atoms too close or flying apart, non-finite
values); a run that fails stops with exit code 3 and keeps its files up to the last good frame
(the failing frame in failed-frame.xyz). Ctrl-C stops cleanly (exit code 130), files kept.
"""

import argparse
import math
import sys
import time


def _number(kind, minimum, inclusive: bool, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
        return value

    return parse


_steps = _number(int, 1, True, "must be a whole number of steps ≥ 1")
_steps0 = _number(int, 0, True, "must be a whole number of steps ≥ 0")
_timestep = _number(float, 0.0, False, "must be a time step > 0 fs (0.5 suits molecules with hydrogen)")
_kelvin = _number(float, 0.0, True, "must be a temperature ≥ 0 K")
_friction = _number(float, 0.0, True, "must be a friction ≥ 0 per fs")
_threads = _number(int, 1, True, "must be a whole number of threads ≥ 1")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("potential", help="potential file (.pt) or shipped name, e.g. ethanol-egnn")
    p.add_argument("structure", help="structure file ase.io reads (last frame), or a molecule name, e.g. ethanol")
    p.add_argument("--steps", type=_steps, default=1000)
    p.add_argument("--timestep", type=_timestep, default=0.5, help="fs (default 0.5)")
    p.add_argument("--temperature", type=_kelvin, default=300.0, help="K: initial velocities, and the bath for nvt")
    p.add_argument("--ensemble", choices=["nve", "nvt"], default="nve",
                   help="nve: velocity Verlet (reports energy drift); nvt: Langevin")
    p.add_argument("--friction", type=_friction, default=0.01, help="Langevin friction, 1/fs (nvt and equilibration)")
    p.add_argument("--equilibrate", type=_steps0, default=0, metavar="STEPS",
                   help="Langevin steps at --temperature before the recorded run (ASE engine)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None)
    p.add_argument("--output", default="md-run", help="folder for trajectory.traj, energies.csv, energies.png")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier run in --output (without it such a folder is refused)")
    p.add_argument("--log-every", type=_steps, default=10,
                   help="steps between trajectory frames, energy rows and health checks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-health-checks", action="store_true",
                   help="check only for non-finite values, not for heating, large forces, collapse or broken "
                   "bonds (for runs meant to break bonds)")
    p.add_argument("--threads", type=_threads, default=None,
                   help="torch threads (default: OMP_NUM_THREADS if set, else 1 for systems below 1 000 atoms, "
                   "else one per idle core)")
    p.add_argument("--engine", choices=["ase", "openmm"], default="ase",
                   help="ase (default) or openmm (TorchForce/PythonForce; writes trajectory.dcd)")
    p.add_argument("--platform", default="CPU", help="OpenMM platform (openmm engine): Reference, CPU, CUDA")
    p.add_argument("--backend", choices=["auto", "torchforce", "pythonforce"], default="auto",
                   help="how OpenMM runs geoff (openmm engine)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="energy + forces through torch.compile (geoff.CompiledPotential; with the openmm engine as "
                   "a PythonForce): 10–30 s of compilation first, then up to 3× faster per step on small "
                   "molecules and large boxes. Default: compile when the run is long enough to gain from it")
    p.add_argument("--trajectory-format", choices=["dcd", "pdb"], default="dcd", help="openmm engine trajectory")


def check_device(name: str):
    """``torch.device(name)`` if torch can use it here, else GeoffInputError naming the fix."""
    import torch

    from ..errors import GeoffInputError

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise GeoffInputError(f"--device {name!r} is not a device torch knows ({exc}); use cpu or cuda.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GeoffInputError(f"--device {name}: torch sees no CUDA GPU on this machine; use --device cpu "
                                  "(or check the GPU driver and CUDA_VISIBLE_DEVICES).")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GeoffInputError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA device(s) "
                                  f"(cuda:0 … cuda:{torch.cuda.device_count() - 1}).")
    try:
        torch.zeros(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise GeoffInputError(f"--device {name}: torch cannot use it here ({exc}); use --device cpu.") from None
    return device


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _ase_calculator(args, potential, atoms, steps_total: int):
    """(calculator, PathChoice, compile seconds or None) for the ASE engine."""
    from ase.calculators.calculator import all_changes

    from ..ase import GeoffCalculator
    from ..errors import GeoffError
    from ..md.compiling import PathChoice, choose_path, time_eager_call

    eager = GeoffCalculator(potential, device=args.device, dtype=args.dtype)
    eager_s = time_eager_call(eager, atoms) if args.compile is None else None
    choice = _said(args, choose_path(steps_total, len(atoms), eager_s, "ase", args.compile))
    if not choice.compiled:
        return eager, choice, None
    calc = GeoffCalculator(potential, device=args.device, dtype=args.dtype, compile=True)
    t0 = time.perf_counter()
    try:
        calc.calculate(atoms.copy(), ["energy", "forces"], all_changes)  # compiles now, not inside the MD loop
    except GeoffError:
        raise
    except Exception as exc:
        print(f"geoff md: compilation failed ({type(exc).__name__}: {_first_line(exc)}); running eager.",
              file=sys.stderr)
        return eager, PathChoice(False, "compilation failed; running eager"), None
    return calc, choice, time.perf_counter() - t0


def _openmm_path(args, n_atoms: int, steps_total: int, potential, atoms):
    from ..ase import GeoffCalculator
    from ..md.compiling import PathChoice, choose_path, time_eager_call

    if args.backend == "torchforce" and args.compile is not False:
        if args.compile:
            return PathChoice(True, "--compile")  # create_force explains why the two do not mix
        return PathChoice(False, "--backend torchforce runs TorchScript, not compiled graphs")
    eager_s = time_eager_call(GeoffCalculator(potential, device=args.device, dtype=args.dtype), atoms) \
        if args.compile is None else None
    return _said(args, choose_path(steps_total, n_atoms, eager_s, "openmm", args.compile))


def _said(args, choice):
    """``choice``; when --compile was asked for and cannot be honoured, say so in one line."""
    if args.compile and not choice.compiled:
        print(f"geoff md: --compile: {choice.reason}.", file=sys.stderr)
    return choice


def run(args) -> int:
    from ..ase.md import run_md
    from ..io import load_potential
    from ..md.health import MDFailure, MDInterrupted, check_md_input
    from ..md.loop import prepare_output_dir
    from ..md.structure import load_structure
    from ..threads import apply_threads, choose_threads

    check_device(args.device)
    prepare_output_dir(args.output, args.overwrite)
    potential = load_potential(args.potential)
    atoms = load_structure(args.structure)
    check_md_input(atoms, potential)
    threads = apply_threads(choose_threads(len(atoms), args.threads))
    engine = getattr(args, "engine", "ase")
    compile_s = None
    try:
        if engine == "openmm":
            from ..openmm.md import run_openmm_md

            path = _openmm_path(args, len(atoms), args.steps, potential, atoms)
            run = lambda compiled: run_openmm_md(  # noqa: E731
                atoms, potential, steps=args.steps, timestep_fs=args.timestep, temperature_k=args.temperature,
                ensemble=args.ensemble, friction_per_fs=args.friction, output_dir=args.output,
                log_every=args.log_every, seed=args.seed, progress=not args.no_progress, platform=args.platform,
                backend=args.backend, trajectory_format=args.trajectory_format, dtype=args.dtype,
                device=args.device, compile=compiled, overwrite=True, health_checks=not args.no_health_checks,
                threads=threads.threads)
            res = _run_openmm(run, path)
            path = res.path_choice
        else:
            calc, path, compile_s = _ase_calculator(args, potential, atoms, args.steps + args.equilibrate)
            res = run_md(atoms, calc, steps=args.steps, timestep_fs=args.timestep, temperature_k=args.temperature,
                         ensemble=args.ensemble, friction_per_fs=args.friction, output_dir=args.output,
                         log_every=args.log_every, seed=args.seed, progress=not args.no_progress,
                         equilibration_steps=args.equilibrate, overwrite=True,
                         health_checks=not args.no_health_checks)
    except (MDFailure, MDInterrupted) as exc:
        if getattr(exc, "result", None) is not None and exc.result.steps > 0:
            print(f"stopped at step {exc.step}; the part that ran:")
            _summary(args, atoms, exc.result, threads, path, compile_s)
        raise
    _summary(args, atoms, res, threads, path, compile_s)
    return 0


def _run_openmm(run, path):
    """Run OpenMM MD on ``path``; when the compiled path fails to compile, say so in one line and run eager."""
    from ..errors import GeoffError
    from ..md.compiling import PathChoice

    if not path.compiled:
        res = run(False)
    else:
        try:
            res = run(True)
        except GeoffError:
            raise
        except Exception as exc:
            print(f"geoff md: compilation failed ({type(exc).__name__}: {_first_line(exc)}); running eager.",
                  file=sys.stderr)
            path = PathChoice(False, "compilation failed; running eager")
            res = run(False)
    res.path_choice = path
    return res


def _summary(args, atoms, res, threads, path, compile_s) -> None:
    print(f"atoms            {len(atoms)}")
    start = f"after {args.equilibrate} steps at {args.temperature} K" if args.equilibrate else \
        f"{args.temperature} K start"
    print(f"steps            {res.steps} x {args.timestep} fs ({args.ensemble.upper()}, {start})")
    print(f"speed            {res.steps_per_s:.1f} steps/s, {res.ns_per_day:.3f} ns/day "
          f"({res.steps_per_s * len(atoms):.0f} atom-steps/s)")
    print(f"threads          {threads.threads} ({threads.reason})")
    compiled_in = f"; compiled in {compile_s:.1f} s" if compile_s is not None else ""
    print(f"path             {path.name} ({path.reason}{compiled_in})")
    label = "energy drift" if args.ensemble == "nve" else "energy drift (thermostatted: not conserved)"
    print(f"{label:16s} {res.drift_mev_per_atom_per_ps:+.4f} meV/atom/ps "
          f"(total-energy std {res.energy_fluctuation_mev_per_atom:.4f} meV/atom)")
    print(f"mean temperature {res.mean_temperature_k:.1f} K")
    print(f"trajectory       {res.trajectory}")
    print(f"energy log       {res.log}")
    if res.plot:
        print(f"plot             {res.plot}")
