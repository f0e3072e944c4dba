"""Fine-tune a trained potential on new data (small data, sensible defaults).

Example:
    geoff finetune ethanol-egnn methanol.xyz --n-train 50 --freeze embedding --run-dir runs/ft-methanol
    geoff finetune ethanol-egnn 3bpa.xyz --isolated-atoms iso_atoms.xyz --max-time-minutes 30
Defaults: lr 2e-3, batch 8, 200 epochs (or the time budget, the learning rate annealed over
its last 35 %) with early stopping, reference energies
re-fitted to the new data, 10% of the data for validation (or --valid FILE).
Elements the potential lacks (N in the second example) are added to it; their
reference energies come from --isolated-atoms when given, else from the refit.
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("potential", help="potential file (.pt) or shipped name, e.g. ethanol-egnn")
    p.add_argument("data", nargs="+", help="training structures (any ase.io format or MD17 .npz)")
    p.add_argument("--valid", nargs="*", help="validation file(s) (default: split the data by --seed)")
    p.add_argument("--test", nargs="*", help="test file(s), evaluated at the end")
    p.add_argument("--isolated-atoms", metavar="FILE",
                   help="isolated-atom energies at the new data's level of theory (one-atom frames): they replace "
                        "the reference energies of their elements, new elements included")
    p.add_argument("--n-train", type=int)
    p.add_argument("--n-valid", type=int)
    p.add_argument("--index", default=":", help="ASE frame selection of the data files, e.g. 0:300")
    p.add_argument("--config-types", nargs="*", help="keep only frames with these config_type values")
    p.add_argument("--freeze", nargs="*", default=[], help="parameter-name prefixes to freeze, e.g. embedding layers.0")
    p.add_argument("--no-refit", action="store_true", help="keep the potential's reference energies")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-epochs", type=int, help="default 200, or no limit when --max-time-minutes is given")
    p.add_argument("--max-time-minutes", type=float)
    p.add_argument("--energy-weight", type=float, default=1.0)
    p.add_argument("--forces-weight", type=float, default=1.0)
    p.add_argument("--energy-unit", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threads", type=int, help="torch threads (default: OMP_NUM_THREADS, else by batch size)")
    p.add_argument("--run-dir", default="runs/finetune")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a --run-dir that holds an earlier run's results, deleting them "
                        "(without it such a folder is refused; continue a run with geoff train --resume RUN_DIR)")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from ..training.finetune import finetune
    from .train import print_summary

    data = {"index": args.index, "n_train": args.n_train, "n_valid": args.n_valid, "config_types": args.config_types,
            "energy_unit": args.energy_unit, "isolated_atoms": args.isolated_atoms}
    if args.valid:
        data["valid"] = args.valid
    if args.test:
        data["test"] = args.test
    overrides = {
        "run_dir": args.run_dir, "seed": args.seed, "dtype": args.dtype, "progress": not args.no_progress, "threads": args.threads,
        "data": data,
        "loss": {"energy_weight": args.energy_weight, "forces_weight": args.forces_weight},
        "optim": {"lr": args.lr, "batch_size": args.batch_size, "max_epochs": args.max_epochs or (200 if args.max_time_minutes is None else 10**6),
                  "max_time_minutes": args.max_time_minutes},
        "finetune": {"freeze": args.freeze, "refit_reference_energies": not args.no_refit},
        "overwrite": bool(args.overwrite),
    }
    summary = finetune(args.potential, args.data if len(args.data) > 1 else args.data[0], overrides)
    print_summary(summary, args.run_dir)
    return 0
