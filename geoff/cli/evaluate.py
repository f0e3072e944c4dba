"""Evaluate a potential on labelled data: energy/force MAE and RMSE, parity plots.

Example: geoff evaluate ethanol-egnn ../shared/data/ethanol/test_MD.xyz --output runs/eval-ethanol
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("potential", help="potential file (.pt) or shipped name, e.g. ethanol-egnn")
    p.add_argument("data", nargs="+", help="labelled structures: any file ase.io reads, or an MD17 .npz")
    p.add_argument("--output", default="evaluation", help="folder for evaluation.json and the parity plot")
    p.add_argument("--name", default="evaluation", help="file name stem of the outputs")
    p.add_argument("--config-types", nargs="*", help="keep only frames with these config_type values")
    p.add_argument("--index", default=":", help="ASE frame selection, e.g. 0:100")
    p.add_argument("--energy-key", default=None,
                   help="name of the energy field (default energy); when given, every structure must have it")
    p.add_argument("--forces-key", default=None,
                   help="name of the forces array (default forces); when given, every structure must have it")
    p.add_argument("--energy-unit", default=None, help="unit of the file's energies (default eV; needed for .npz)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dtype", choices=["float32", "float64"], default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    import torch

    from ..io import load_potential
    from ..training.data import read_dataset, split_isolated_atoms
    from ..training.evaluate import check_labels, evaluate_potential, format_table, write_report

    energy_key, forces_key = args.energy_key or "energy", args.forces_key or "forces"
    samples = []
    for path in args.data:
        samples += read_dataset(path, energy_key=energy_key, forces_key=forces_key,
                                energy_unit=args.energy_unit, index=args.index, config_types=args.config_types)
    samples, _ = split_isolated_atoms(samples)
    check_labels(samples, need_energy=args.energy_key is not None, need_forces=args.forces_key is not None,
                 energy_key=energy_key, forces_key=forces_key)
    dtype = getattr(torch, args.dtype) if args.dtype else None
    pot = load_potential(args.potential, device=args.device, dtype=dtype)
    summary, arrays = evaluate_potential(pot, samples, args.batch_size, progress=not args.no_progress)
    files = write_report(summary, arrays, args.output, args.name)
    print(format_table(summary, f"{args.potential} on {', '.join(args.data)}"))
    print(f"numbers           {files['json']}")
    print(f"parity plot       {files['parity']}")
    return 0
