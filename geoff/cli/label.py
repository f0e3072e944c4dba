"""Label structures with DFT (PySCF): energies and forces into an extended XYZ file for geoff train.

Example: geoff label structures.xyz --dft PBE/def2-SVP --output labels.xyz
Restarting the same command skips the frames already labelled (or recorded as failed).
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("structures", help="structures to label: any file ase.io reads (molecules; no periodic cells)")
    p.add_argument("--dft", required=True, metavar="METHOD/BASIS",
                   help="level of theory, e.g. PBE/def2-SVP, B3LYP/6-31G*, HF/sto-3g, PBE-D3BJ/def2-SVP")
    p.add_argument("--output", "-o", default=None,
                   help="extended XYZ file the labels are appended to (default: STRUCTURES-stem.labels.xyz)")
    p.add_argument("--failures", default=None,
                   help="extended XYZ file for configurations that failed (default: OUTPUT-stem.failures.xyz)")
    p.add_argument("--charge", type=int, default=0, help="total charge (default 0)")
    p.add_argument("--spin", type=int, default=0,
                   help="2S = N_alpha - N_beta (default 0: closed shell, restricted KS; > 0: unrestricted)")
    p.add_argument("--dispersion", default=None, help="dispersion correction: d3bj, d3zero, d4 (needs pyscf-dispersion)")
    p.add_argument("--grid-level", type=int, default=3, help="PySCF DFT integration grid level 0-9 (default 3)")
    p.add_argument("--conv-tol", type=float, default=1e-9, help="SCF energy convergence, Hartree (default 1e-9)")
    p.add_argument("--max-cycle", type=int, default=100,
                   help="SCF iterations before a configuration is recorded as failed (default 100)")
    p.add_argument("--index", default=":", help="ASE frame selection, e.g. 0:100 (default: all)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: one per core, one PySCF thread each)")
    p.add_argument("--threads", type=int, default=None,
                   help="PySCF threads per worker (default: OMP_NUM_THREADS if set, else 1)")
    p.add_argument("--retry-failed", action="store_true", help="label the frames of the failures file again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar; one line per label instead")


def run(args) -> int:
    from pathlib import Path

    from ..dft import label_structures, parse_method

    settings = parse_method(args.dft, args.dispersion)
    settings.charge, settings.spin = args.charge, args.spin
    settings.grid_level, settings.conv_tol, settings.max_cycle = args.grid_level, args.conv_tol, args.max_cycle
    output = args.output or str(Path(args.structures).with_name(f"{Path(args.structures).stem}.labels.xyz"))
    summary = label_structures(args.structures, output, settings, index=args.index, workers=args.workers,
                               threads=args.threads, failures_path=args.failures, retry_failed=args.retry_failed,
                               progress=not args.no_progress, log=print)
    print(summary.format())
    return 0
