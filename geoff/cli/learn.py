"""Active learning: explore with MD, label where the committee is unsure with DFT, fine-tune, repeat.

Examples:
    geoff learn ethanol-egnn start.xyz --dft PBE/def2-SVP --temperature 400 --budget-labels 200 --run-dir runs/learn-x
    geoff learn --from-scratch water.xyz --dft PBE/def2-SVP --model-config model.yaml --run-dir runs/learn-water
Running the same command again continues a killed run (with other --budget-labels, --max-hours or
--max-iterations if wanted); another command on that --run-dir is refused unless --overwrite. Results in --run-dir: committee.pt, labels.xyz, report.md/.json/.png,
MODEL_CARD.md.
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="POTENTIAL_OR_STRUCTURES",
                   help="the potential to start from (a .pt file, a committee file, or a shipped name such as "
                        "ethanol-egnn), then one or more start structure files (any ase.io format); with "
                        "--from-scratch only structure files")
    p.add_argument("--from-scratch", action="store_true",
                   help="no start potential: the committee is trained from scratch on the first labels")
    p.add_argument("--model-config", metavar="YAML",
                   help="with --from-scratch: the model (a geoff train config's model: section; default EGNN)")
    p.add_argument("--dft", required=True, metavar="METHOD/BASIS", help="level of theory, e.g. PBE/def2-SVP, HF/sto-3g")
    p.add_argument("--charge", type=int, default=0, help="total charge (default 0)")
    p.add_argument("--spin", type=int, default=0, help="2S = N_alpha - N_beta (default 0)")
    p.add_argument("--run-dir", required=True, help="folder of the run (state, labels, committee, report)")
    g = p.add_argument_group("exploration")
    g.add_argument("--temperature", type=float, nargs="+", default=[300.0], help="MD temperature(s), K (default 300)")
    g.add_argument("--steps", type=int, default=2000,
                   help="steps of each exploration run; converged when a whole run stays below --threshold (default 2000)")
    g.add_argument("--timestep", type=float, default=0.5, help="MD time step, fs (default 0.5)")
    g.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs (default 0.01)")
    g.add_argument("--sample-every", type=int, default=10, help="steps between checked frames (default 10)")
    g = p.add_argument_group("selection")
    g.add_argument("--threshold", type=float, default=0.05,
                   help="label frames whose max atomic force std (committee) exceeds this, eV/Å (default 0.05)")
    g.add_argument("--upper-bound", type=float, default=0.5,
                   help="beyond this max atomic force std a run stops (geometry not trusted), eV/Å (default 0.5)")
    g.add_argument("--max-per-iteration", type=int, default=10, help="labels per iteration at most (default 10)")
    g.add_argument("--min-spacing", type=int, default=50,
                   help="MD steps between two labelled frames of one run at least (default 50)")
    g.add_argument("--initial-labels", type=int, default=None,
                   help="labels before there is a committee (default: --max-per-iteration)")
    g = p.add_argument_group("budgets")
    g.add_argument("--budget-labels", type=int, default=200, help="DFT labels at most (default 200)")
    g.add_argument("--max-hours", type=float, default=None, help="wall time, hours (checked between iterations)")
    g.add_argument("--max-iterations", type=int, default=None, help="iterations at most")
    g = p.add_argument_group("committee and training")
    g.add_argument("--committee-size", type=int, default=4, help="members (default 4)")
    g.add_argument("--train-minutes", type=float, default=3.0,
                   help="training time per member and iteration, minutes (default 3)")
    g.add_argument("--max-epochs", type=int, default=200, help="epochs per member and iteration at most (default 200)")
    g.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-frames", type=int, default=10,
                   help="frames of fresh MD labelled at the end to measure the final errors (default 10; 0: none)")
    p.add_argument("--workers", type=int, default=None, help="processes for the DFT labels and for training members at once (default: one per core)")
    p.add_argument("--threads", type=int, default=None, help="PySCF threads per worker (default 1)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run of another command in --run-dir and start afresh")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def settings_from_args(args):
    from ..errors import GeoffInputError
    from ..learn import LearnSettings

    inputs = list(args.inputs)
    if args.from_scratch:
        potential, structures = None, inputs
    else:
        if len(inputs) < 2:
            raise GeoffInputError("give the potential to start from and at least one start structure file "
                                  "(geoff learn ethanol-egnn start.xyz ...), or --from-scratch and structure files.")
        potential, structures = inputs[0], inputs[1:]
    return LearnSettings(
        structures=structures, dft=args.dft, run_dir=args.run_dir, potential=potential, from_scratch=args.from_scratch,
        model_config=args.model_config, temperatures=list(args.temperature), steps=args.steps,
        timestep_fs=args.timestep, friction_per_fs=args.friction, sample_every=args.sample_every,
        threshold=args.threshold, upper_bound=args.upper_bound, max_per_iteration=args.max_per_iteration,
        min_spacing=args.min_spacing, initial_labels=args.initial_labels, budget_labels=args.budget_labels,
        max_hours=args.max_hours, max_iterations=args.max_iterations, committee_size=args.committee_size,
        train_minutes=args.train_minutes, max_epochs=args.max_epochs, test_frames=args.test_frames,
        charge=args.charge, spin=args.spin, seed=args.seed, workers=args.workers, threads=args.threads)


def run(args) -> int:
    from ..learn import learn

    result = learn(settings_from_args(args), overwrite=args.overwrite, progress=not args.no_progress)
    print(f"stopped by        {result.stop_reason} after {result.iterations} iteration(s), {result.labels_total} labels")
    if result.test and result.test.get("frames"):
        print(f"test ({result.test['frames']} fresh MD frames)  force MAE {result.test['forces_mae_mev_per_a']:.1f} meV/Å, "
              f"energy MAE {result.test['energy_mae_mev_per_atom']:.2f} meV/atom")
    print(f"committee         {result.committee}")
    print(f"labels            {result.labels}")
    print(f"report            {result.report}")
    return 0
