"""Active learning from Python: the shipped ethanol potential learns methanol from PySCF labels.

Run:  OMP_NUM_THREADS=1 .venv/bin/python examples/active_learning.py [--run-dir runs/example-learn] [--budget 12]

What happens (the same as `geoff learn ethanol-egnn methanol.xyz --dft PBE/def2-SVP ...`):
iteration 0 runs MD with ethanol-egnn and labels 6 frames spread over it with DFT; two members
are fine-tuned from ethanol-egnn on them (different seeds) and form a committee; iteration 1
runs MD with the committee and labels the frames where its members disagree most; the members
are fine-tuned again on all labels. At the end 4 frames of fresh MD are labelled to measure the
final committee, and the run folder holds committee.pt, labels.xyz, report.md/.json/.png and
MODEL_CARD.md. Killing the script and running it again continues where it stopped.

Time: about 6 minutes on one core of the project's 2-core CPU machine (16 PBE/def2-SVP labels at
~5 s each, 2 × 2 one-minute fine-tunings, 4 short MD runs).
"""

import argparse
from pathlib import Path

from ase.build import molecule
from ase.io import write

import geoff
from geoff.learn import LearnSettings, learn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/example-learn")
    parser.add_argument("--budget", type=int, default=12, help="DFT labels for training at most")
    args = parser.parse_args()

    start = Path(args.run_dir).with_suffix(".start.xyz")
    start.parent.mkdir(parents=True, exist_ok=True)
    if not start.exists():
        write(start, molecule("CH3OH"))

    settings = LearnSettings(
        potential="ethanol-egnn", structures=[str(start)], dft="PBE/def2-SVP", run_dir=args.run_dir,
        temperatures=[300.0], steps=400, sample_every=10,      # 0.2 ps of Langevin MD per exploration
        threshold=0.05, upper_bound=0.5,                        # eV/Å: label above, stop the run beyond
        initial_labels=6, max_per_iteration=6, min_spacing=50, budget_labels=args.budget,
        committee_size=2, train_minutes=1.0, test_frames=4)
    result = learn(settings)

    print(f"stopped by {result.stop_reason} after {result.iterations} iteration(s) with {result.labels_total} labels")
    if result.test:
        print(f"fresh MD frames: force MAE {result.test['forces_mae_mev_per_a']:.1f} meV/Å, "
              f"committee max force std {result.test['max_force_std_mev_per_a']:.1f} meV/Å")

    # the committee is an ordinary potential with an uncertainty
    atoms = molecule("CH3OH")
    atoms.calc = geoff.GeoffCalculator(result.committee)
    atoms.get_forces()
    print(f"methanol: max atomic force std {1000 * atoms.calc.results['max_force_std']:.1f} meV/Å")
    print(f"report: {result.report}")


if __name__ == "__main__":
    main()
