"""Accuracy next to speed: test force MAE on ethanol test_MD.xyz.

    .venv/bin/python benchmarks/accuracy.py                     # the shipped potential ethanol-egnn
    .venv/bin/python benchmarks/accuracy.py --potential path/to/potential.pt

Prints a small markdown table (benchmarks/run.py --accuracy appends it to the
speed table): force MAE and RMSE per component (meV/Å) and energy MAE per atom
(meV/atom) over the 1 000 test configurations, through geoff's own evaluator
(geoff.training.evaluate). A MACE row is added when benchmarks/results/mace-ethanol-accuracy.json
exists: MACE small trained on the same 1 000 training configurations for a
given wall-clock budget by benchmarks/peers/train_mace.py.
"""

import argparse
import os
import json
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
from systems import DATA  # noqa: E402

TEST = os.path.join(DATA, "ethanol", "test_MD.xyz")
MACE_RESULT = os.path.join(HERE, "results", "mace-ethanol-accuracy.json")


def geoff_row(potential: str, threads: int) -> str:
    import torch
    import geoff
    from geoff.training.data import read_dataset
    from geoff.training.evaluate import evaluate_potential

    torch.set_num_threads(threads)
    pot = geoff.load(potential).eval()
    samples = read_dataset(TEST)
    summary, _ = evaluate_potential(pot, samples, batch_size=50)
    return (f"| geoff {potential} | {summary['forces_mae_mev_per_a']:.1f} | {summary['forces_rmse_mev_per_a']:.1f} "
            f"| {summary['energy_mae_mev_per_atom']:.2f} | {summary['structures']} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--potential", default="ethanol-egnn", help="shipped name or path (default ethanol-egnn)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if not os.path.exists(TEST):
        print(f"accuracy: not measured ({TEST} is missing)")
        return 0
    print("accuracy on ethanol test_MD.xyz (revised MD17 ethanol, PBE/def2-SVP), random-weight speed rows above")
    print("| model | force MAE meV/Å | force RMSE meV/Å | energy MAE meV/atom | test structures |")
    print("|---|---|---|---|---|")
    try:
        print(geoff_row(args.potential, args.threads))
    except Exception as exc:  # e.g. the shipped potential is not trained yet
        print(f"| geoff {args.potential} | — | — | — | not measured: {type(exc).__name__}: {str(exc)[:150]} |")
    if os.path.exists(MACE_RESULT):
        with open(MACE_RESULT) as f:
            r = json.load(f)
        print(f"| MACE small, {r['budget_minutes']:g} min of training ({r['epochs']} epochs) | "
              f"{r['force_mae_mev_per_a']:.1f} | — | {r['energy_mae_mev_per_atom']:.2f} | {r['test_configs']} |")
    else:
        print("| MACE small (same data, same wall clock) | — | — | — | not trained yet (see benchmarks/README.md) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
