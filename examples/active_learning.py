"""Active learning from Python: the shipped ethanol potential learns methanol from PySCF labels.

Run:  OMP_NUM_THREADS=1 .venv/bin/python examples/active_learning.py [--run-dir runs/example-learn] [--budget 12]
      OMP_NUM_THREADS=1 .venv/bin/python examples/active_learning.py --quick    # water, HF/sto-3g, from scratch

What happens (the same as `geoff learn ethanol-egnn methanol.xyz --dft PBE/def2-SVP ...`):
iteration 0 runs MD with ethanol-egnn and labels 6 frames spread over it with DFT; two members
are fine-tuned from ethanol-egnn on them (different seeds) and form a committee; iteration 1
runs MD with the committee and labels the frames where its members disagree most; the members
are fine-tuned again on all labels. At the end 4 frames of fresh MD are labelled to measure the
final committee, and the run folder holds committee.pt, labels.xyz, report.md/.json/.png and
MODEL_CARD.md. Killing the script and running it again continues where it stopped.

Time: the work is 16 PBE/def2-SVP labels of methanol (10–30 s each per PySCF worker, measured on
the project's 2-core machine with other jobs running; two workers run at once), 2 × 2 fine-tunings
of at most one minute each and about ten MD runs of 400 steps: 6–10 minutes on an idle 2-core
machine (estimated from those parts; not timed end to end). ``--quick`` runs the same loop on water
with HF/sto-3g labels (~0.1 s each) and tiny members trained from scratch: the loop
tests/test_learn.py runs, 17 s of loop with other jobs running (plus the imports).
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
    parser.add_argument("--quick", action="store_true", help="water, HF/sto-3g, tiny members from scratch (seconds)")
    args = parser.parse_args()

    name = "H2O" if args.quick else "CH3OH"
    start = Path(args.run_dir).with_suffix(f".{name}.xyz")
    start.parent.mkdir(parents=True, exist_ok=True)
    if not start.exists():
        write(start, molecule(name))

    if args.quick:
        model = start.with_suffix(".model.yaml")
        model.write_text("model: {type: egnn, cutoff: 4.0, hidden: 8, num_layers: 1, num_basis: 4}\n")
        settings = LearnSettings(
            from_scratch=True, model_config=str(model), structures=[str(start)], dft="HF/sto-3g",
            run_dir=args.run_dir, temperatures=[300.0], steps=60, sample_every=5, threshold=0.001, upper_bound=2.0,
            initial_labels=4, max_per_iteration=3, min_spacing=10, budget_labels=args.budget, max_iterations=2,
            committee_size=2, train_minutes=None, max_epochs=10, test_frames=3, workers=1)
    else:
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
    atoms = molecule(name)
    atoms.calc = geoff.GeoffCalculator(result.committee)
    atoms.get_forces()
    print(f"{name}: max atomic force std {1000 * atoms.calc.results['max_force_std']:.1f} meV/Å")
    print(f"report: {result.report}")


if __name__ == "__main__":
    main()
