"""Active learning against random selection from the same MD (a measurement, not a test).

Takes a finished ``geoff learn`` run, draws as many frames as it labelled at random from all of
its exploration MD (every iteration's ``explore/run-*.xyz``), labels them with the same level of
theory, fine-tunes a committee of the same size from the same start potential on them (each
member for the run's total training time per member: iterations × --train-minutes), and
compares both committees on the run's own test labels (fresh MD frames, ``test/labels.xyz``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learn_vs_random.py runs/learn-acetaldehyde --name acetaldehyde

Writes benchmarks/results/learn-NAME.{json,md}; the random run's files go to RUN_DIR/random/
(resumable: labels are appended one by one, members resume from their checkpoints).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geoff.dft import label_structures, parse_method  # noqa: E402
from geoff.learn.accuracy import errors_against_labels  # noqa: E402
from geoff.learn.explore import read_frames, write_frames  # noqa: E402
from geoff.learn.members import train_members, write_committee  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--name", required=True, help="results name: benchmarks/results/learn-NAME.*")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--hot", type=float, default=None, metavar="K",
                   help="also test on a hotter set: MD at K kelvin from the start structure with each of the two "
                        "committees (half the frames from each, so neither is tested on its own MD only), labelled "
                        "at the run's level of theory")
    args = p.parse_args()

    run = args.run_dir
    state = json.loads((run / "learn.json").read_text())
    if state["stage"] != "done":
        sys.exit(f"{run} is not finished (stage {state['stage']}); finish the geoff learn run first.")
    cmd = state["command"]
    n_labels = int(state["labels_total"])
    iterations = sum(1 for r in state["iterations"] if r.get("train"))  # iterations that trained the members
    pool = []
    for path in sorted(run.glob("iter-*/explore/run-*.xyz")):
        pool += read_frames(path)
    out = run / "random"
    rng = np.random.default_rng(args.seed)
    picks = sorted(rng.choice(len(pool), size=n_labels, replace=False).tolist())
    if not (out / "frames.xyz").exists():
        write_frames(out / "frames.xyz", [pool[k] for k in picks])
    dft = parse_method(cmd["dft"])
    dft.charge, dft.spin = cmd["charge"], cmd["spin"]
    t0 = time.time()
    label_structures(out / "frames.xyz", out / "labels.xyz", dft)
    label_s = time.time() - t0
    start = cmd["potential"]["path"]
    minutes = None if cmd["train_minutes"] is None else cmd["train_minutes"] * iterations
    from geoff.io import load_potential

    n_members = load_potential(run / "committee.pt").num_members
    processes = cmd.get("workers") or os.cpu_count() or 1  # as the loop trained its members
    t0 = time.time()
    members = train_members([{"run_dir": out / f"member-{k}", "start": start, "train_file": out / "labels.xyz",
                              "seed": cmd["seed"] + k + 1, "max_epochs": cmd["max_epochs"] * iterations,
                              "minutes": minutes} for k in range(n_members)], processes)
    train_s = time.time() - t0
    write_committee(members, out / "committee.pt", {"trained_by": "benchmarks/learn_vs_random.py"})

    test = read_frames(run / "test" / "labels.xyz")
    active = errors_against_labels(run / "committee.pt", test)
    random_ = errors_against_labels(out / "committee.pt", test)
    start_err = errors_against_labels(start, test)
    hot = None
    if args.hot is not None:
        hot_labels = hot_test(run, out, dft, args.hot, len(test), cmd)
        hot = {"temperature_K": args.hot, "frames": len(hot_labels),
               **{name: errors_against_labels(path, hot_labels)
                  for name, path in (("active", run / "committee.pt"), ("random", out / "committee.pt"))}}
    keys = ("forces_mae_mev_per_a", "forces_rmse_mev_per_a", "energy_mae_mev_per_atom", "max_force_error_mev_per_a",
            "max_force_std_mev_per_a")
    result = {"run_dir": str(run), "command": cmd, "labels": n_labels, "iterations": iterations,
              "members": n_members, "train_minutes_per_member": minutes, "pool_frames": len(pool),
              "test_frames": len(test), "random_label_wall_s": round(label_s, 1), "random_train_wall_s": round(train_s, 1),
              "start_potential": {k: start_err.get(k) for k in keys},
              "active": {k: active.get(k) for k in keys}, "random": {k: random_.get(k) for k in keys},
              "active_stop_reason": state["stop_reason"], "active_elapsed_s": state["elapsed_s"], "hot_test": hot}
    results = ROOT / "benchmarks" / "results"
    (results / f"learn-{args.name}.json").write_text(json.dumps(result, indent=1))

    def row(name, e):
        def f(k):
            return "–" if e.get(k) is None else f"{e[k]:.2f}" if k.startswith("energy") else f"{e[k]:.1f}"
        return (f"| {name} | {f('forces_mae_mev_per_a')} | {f('forces_rmse_mev_per_a')} | "
                f"{f('energy_mae_mev_per_atom')} | {f('max_force_error_mev_per_a')} | {f('max_force_std_mev_per_a')} |")

    lines = [f"# Active learning vs random selection: {args.name}", "",
             f"Run `{run}` ({cmd['dft']}, {', '.join(f'{t:g}' for t in cmd['temperatures'])} K, "
             f"{iterations} iterations, stopped by {state['stop_reason']}, {state['elapsed_s'] / 60:.0f} min). "
             f"Both committees: {n_members} members fine-tuned from {cmd['potential']['name']} on {n_labels} "
             f"labels; random: drawn from the run's {len(pool)} exploration frames, each member trained "
             f"{minutes} min. Test: the run's {len(test)} labelled frames of fresh MD with the final committee.", "",
             "| committee | force MAE (meV/Å) | force RMSE (meV/Å) | energy MAE (meV/atom) | "
             "max atomic force error (meV/Å) | max atomic force std (meV/Å) |",
             "|---|---|---|---|---|---|",
             row(f"start potential ({cmd['potential']['name']}, no new labels)", start_err),
             row("active learning (geoff learn)", active), row("random frames, same MD", random_), ""]
    if hot is not None:
        lines += [f"Hot test: {hot['frames']} frames of {hot['temperature_K']:g} K MD from the start structure, half driven "
                  "by each committee, labelled at the same level of theory:", "",
                  "| committee | force MAE (meV/Å) | force RMSE (meV/Å) | energy MAE (meV/atom) | "
                  "max atomic force error (meV/Å) | max atomic force std (meV/Å) |", "|---|---|---|---|---|---|",
                  row("active learning (geoff learn)", hot["active"]), row("random frames, same MD", hot["random"]), ""]
    lines += [f"Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learn_vs_random.py {run} --name {args.name}"
              f"{'' if args.hot is None else f' --hot {args.hot:g}'}`"]
    (results / f"learn-{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def hot_test(run: Path, out: Path, dft, temperature: float, n: int, cmd) -> list:
    """``n`` labelled frames of MD at ``temperature`` from the run's start structure, half with each
    committee (stopped only by the MD health checks), kept in RUN/random/hot-T/ (resumable)."""
    import math

    from geoff.ase import GeoffCalculator
    from geoff.learn.explore import explore
    from geoff.learn.select import select_spread

    folder = out / f"hot-{temperature:g}K"
    frames_path = folder / "frames.xyz"
    if not frames_path.exists():
        start = read_frames(run / "start.xyz")[0]
        picked = []
        for k, committee in enumerate((run / "committee.pt", out / "committee.pt")):
            md = explore(start, GeoffCalculator(str(committee)), temperature, cmd["steps"], cmd["timestep_fs"],
                         cmd["sample_every"], cmd["friction_per_fs"], math.inf, 777 + k,
                         desc=f"hot MD with the {'active' if k == 0 else 'random'} committee")
            frames = [a for a in md.frames if int(a.info["md_step"]) > 0]
            picked += [frames[f] for _, f in select_spread([len(frames)], (n + 1 - k) // 2)]
        write_frames(frames_path, picked)
    label_structures(frames_path, folder / "labels.xyz", dft)
    return read_frames(folder / "labels.xyz")


if __name__ == "__main__":
    main()
