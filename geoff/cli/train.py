"""Train a potential from scratch as a YAML config says (or resume a run).

Examples:
    geoff train potentials/ethanol-egnn/config.yaml
    geoff train --resume runs/ethanol-egnn
    geoff train config.yaml --overwrite        # replace the results of an earlier run in the same run_dir
    torchrun --nproc_per_node 2 -m geoff.cli.main train config.yaml   # data parallel
The config keys and their defaults: geoff/training/config.py (DEFAULTS).
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="YAML config (data, model, loss, optim, checkpoint)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint.pt")
    p.add_argument("--run-dir", help="override run_dir")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a run_dir that holds an earlier run's results, deleting them "
                        "(without it such a folder is refused)")
    p.add_argument("--max-epochs", type=int, help="override optim.max_epochs")
    p.add_argument("--max-time-minutes", type=float, help="override optim.max_time_minutes")
    p.add_argument("--seed", type=int, help="override seed")
    p.add_argument("--dtype", choices=["float32", "float64"], help="override dtype")
    p.add_argument("--device", help="override device (cpu, cuda)")
    p.add_argument("--threads", type=int, help="torch threads per process (default: OMP_NUM_THREADS, else one "
                                               "thread for small batches, one per idle core for large ones)")
    p.add_argument("--no-progress", action="store_true")


def _overrides(args) -> dict:
    o: dict = {}
    optim = {}
    if args.max_epochs is not None:
        optim["max_epochs"] = args.max_epochs
    if args.max_time_minutes is not None:
        optim["max_time_minutes"] = args.max_time_minutes
    if optim:
        o["optim"] = optim
    for key in ("run_dir", "seed", "dtype", "device", "threads"):
        if getattr(args, key, None) is not None:
            o[key] = getattr(args, key)
    if args.no_progress:
        o["progress"] = False
    if getattr(args, "overwrite", False):
        o["overwrite"] = True
    return o


def print_summary(summary: dict, run_dir) -> None:
    import os

    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    print(f"run folder        {run_dir}")
    print(f"stopped by        {summary.get('stopped_by', '')} after {summary['epochs']} epochs, "
          f"{summary['steps']} steps, {summary['train_time_s'] / 60:.1f} min")
    if "threads" in summary:
        print(f"threads           {summary['threads']} ({summary['threads_reason']})")
    for split in ("valid", "test"):
        if f"{split}_forces_mae_mev_per_a" in summary or f"{split}_energy_mae_mev_per_atom" in summary:
            print(f"{split:5s} (best EMA) energy MAE {summary.get(f'{split}_energy_mae_mev_per_atom', float('nan')):.3f} "
                  f"meV/atom, force MAE {summary.get(f'{split}_forces_mae_mev_per_a', float('nan')):.2f} meV/Å")
    print(f"potential         {run_dir}/best.pt (EMA weights at the best validation loss)")


def run(args) -> int:
    from ..errors import GeoffInputError
    from ..training import resume, train

    overrides = _overrides(args)
    if args.resume:
        if args.overwrite or args.config:
            raise GeoffInputError("--resume RUN_DIR continues a run as its own config says: give it without a "
                                  "config file and without --overwrite.")
        run_dir = args.resume
        overrides.pop("run_dir", None)
        summary = resume(run_dir, overrides)
    else:
        if not args.config:
            raise GeoffInputError("give a config file (geoff train config.yaml) or --resume RUN_DIR.")
        from ..training import load_config

        run_dir = load_config(args.config, overrides)["run_dir"]
        summary = train(args.config, overrides)
    print_summary(summary, run_dir)
    return 0
