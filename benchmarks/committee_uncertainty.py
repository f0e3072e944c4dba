"""Does a committee's force spread rank its force errors? (a measurement, not a test)

Trains N small EGNN members on ethanol train.xyz with different seeds (one thread each, one after
another: ``geoff train benchmarks/committee/member.yaml --seed k``), builds the committee with
``geoff committee build``, and on test_MD.xyz compares per configuration the committee's largest
atomic force spread (max_force_std, eV/Å) with its true largest atomic force error
max_i |F̄_i − F_DFT,i| (eV/Å): Spearman rank correlation, and a calibration plot.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/committee_uncertainty.py --members 4 --minutes 4
    .venv/bin/python benchmarks/committee_uncertainty.py --evaluate-only     # reuse trained members

Writes benchmarks/results/committee-ethanol.{json,md,png}.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("GEOFF_DATA", ROOT.parent / "shared" / "data")) / "ethanol"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    try:
        from scipy.stats import spearmanr

        return float(spearmanr(a, b).statistic)
    except ImportError:  # ranks (ties averaged), then Pearson
        def ranks(x):
            order = np.argsort(x, kind="mergesort")
            r = np.empty(len(x))
            r[order] = np.arange(len(x))
            for v in np.unique(x):
                r[x == v] = r[x == v].mean()
            return r
        return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def member_config(k: int, runs: Path, n_train) -> Path:
    """member.yaml for member ``k``; with ``n_train`` each member draws its own training subset of that
    size (split_seed = k) instead of all members sharing one split."""
    import yaml

    cfg = yaml.safe_load((ROOT / "benchmarks/committee/member.yaml").read_text())
    if n_train is None:
        return ROOT / "benchmarks/committee/member.yaml"
    for key in ("train", "isolated_atoms"):
        cfg["data"][key] = str((ROOT / cfg["data"][key]).resolve())
    cfg["data"].update(n_train=int(n_train), split_seed=k)
    path = runs / f"member-{k}.yaml"
    runs.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_members(n: int, minutes: float, runs: Path, parallel: int = 1, n_train=None) -> list:
    """Train members 1..n (``parallel`` at a time, each a ``geoff train`` process with one thread)."""
    paths, queue, running = [], [], []
    for k in range(1, n + 1):
        run_dir = runs / f"member-{k}"
        paths.append(run_dir / "best.pt")
        if not (run_dir / "best.pt").exists():
            cmd = [sys.executable, "-m", "geoff.cli.main", "train", str(member_config(k, runs, n_train)),
                   "--seed", str(k), "--run-dir", str(run_dir), "--max-time-minutes", str(minutes), "--overwrite"]
            queue.append((k, cmd))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    while queue or running:
        while queue and len(running) < max(1, parallel):
            k, cmd = queue.pop(0)
            running.append((k, time.time(), subprocess.Popen(cmd, cwd=ROOT, env=env)))
        time.sleep(1.0)
        for item in list(running):
            k, t, proc = item
            if proc.poll() is not None:
                running.remove(item)
                if proc.returncode != 0:
                    sys.exit(f"member {k} failed (exit {proc.returncode})")
                print(f"member {k}: trained in {(time.time() - t) / 60:.1f} min", flush=True)
    return paths


def evaluate(committee_path: Path, test_file: Path):
    import torch
    from ase.io import read

    import geoff

    torch.set_num_threads(1)
    committee = geoff.load(committee_path, dtype=torch.float64)
    frames = read(test_file, ":")
    calc = geoff.GeoffCalculator(committee)
    max_std, max_err, e_std, e_err, f_err_all, f_std_all = [], [], [], [], [], []
    t = time.perf_counter()
    for atoms in frames:
        ref_e, ref_f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = calc
        f = atoms.get_forces()
        err = np.linalg.norm(f - ref_f, axis=1)
        std = calc.results["forces_std"]
        max_std.append(calc.results["max_force_std"])
        max_err.append(err.max())
        e_std.append(calc.results["energy_std"])
        e_err.append(abs(atoms.get_potential_energy() - ref_e))
        f_err_all.append(err)
        f_std_all.append(std)
    wall = time.perf_counter() - t
    return {k: np.asarray(v) for k, v in dict(max_std=max_std, max_err=max_err, e_std=e_std, e_err=e_err).items()}, \
        np.concatenate(f_std_all), np.concatenate(f_err_all), wall


def plot(path: Path, arrays, atom_std, atom_err, rho: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    ax = axes[0]
    x, y = arrays["max_std"] * 1000, arrays["max_err"] * 1000
    ax.scatter(x, y, s=6, alpha=0.5)
    lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="error = spread")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("committee max atomic force std (meV/Å)")
    ax.set_ylabel("true max atomic force error (meV/Å)")
    ax.set_title(f"per configuration (Spearman ρ = {rho:.2f})")
    ax.legend()
    ax = axes[1]  # calibration: RMS error in bins of predicted spread (per atom)
    edges = np.quantile(atom_std, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(edges, atom_std, side="right") - 1, 0, 9)
    pred = np.array([np.sqrt(np.mean(atom_std[idx == b] ** 2)) for b in range(10)]) * 1000
    true = np.array([np.sqrt(np.mean(atom_err[idx == b] ** 2)) for b in range(10)]) * 1000
    ax.plot(pred, true, "o-", label="binned atoms (deciles of spread)")
    m = max(pred.max(), true.max())
    ax.plot([0, m], [0, m], "k--", lw=0.8, label="perfect calibration")
    ax.set_xlabel("RMS atomic force std in bin (meV/Å)")
    ax.set_ylabel("RMS atomic force error in bin (meV/Å)")
    ax.set_title("calibration (per atom)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--minutes", type=float, default=4.0, help="training budget per member (one thread)")
    p.add_argument("--parallel", type=int, default=os.cpu_count() or 1,
                   help="members trained at once, one process and one thread each (default: one per core)")
    p.add_argument("--n-train", type=int, default=None,
                   help="each member trains on its own random subset of this many of the 950 training "
                        "frames (default: all members share one split)")
    p.add_argument("--runs", default=str(ROOT / "runs" / "committee"))
    p.add_argument("--evaluate-only", action="store_true")
    p.add_argument("--save", default="committee-ethanol", help="stem of the files in benchmarks/results/")
    args = p.parse_args()
    runs = Path(args.runs)
    members = [runs / f"member-{k}" / "best.pt" for k in range(1, args.members + 1)] if args.evaluate_only \
        else train_members(args.members, args.minutes, runs, args.parallel, args.n_train)
    committee = runs / "committee.pt"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "geoff.cli.main", "committee", "build", *map(str, members), "-o",
                    str(committee), "--overwrite"], check=True, cwd=ROOT, env=env)
    arrays, atom_std, atom_err, wall = evaluate(committee, DATA / "test_MD.xyz")
    rho = spearman(arrays["max_std"], arrays["max_err"])
    rho_e = spearman(arrays["e_std"], arrays["e_err"])
    rho_atoms = spearman(atom_std, atom_err)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": "project CPU machine, 2 cores shared with other jobs, one torch thread",
        "members": args.members, "minutes_per_member": args.minutes, "member_config": "benchmarks/committee/member.yaml",
        "members_trained_at_once": args.parallel,
        "training_subset_per_member": args.n_train,
        "test_file": "ethanol/test_MD.xyz", "configurations": int(len(arrays["max_std"])),
        "spearman_max_force_std_vs_max_force_error": rho,
        "spearman_atom_force_std_vs_atom_force_error": rho_atoms,
        "spearman_energy_std_vs_abs_energy_error": rho_e,
        "mean_max_force_std_mev_per_a": float(arrays["max_std"].mean() * 1000),
        "mean_max_force_error_mev_per_a": float(arrays["max_err"].mean() * 1000),
        "evaluation_s_per_configuration": wall / len(arrays["max_std"]),
    }
    (out / f"{args.save}.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(out / f"{args.save}.png", arrays, atom_std, atom_err, rho)
    md = [f"# Committee uncertainty on ethanol test_MD ({args.members} EGNN members, 32 × 3, "
          f"{args.minutes:g} min each on one thread"
          f"{f', each on its own {args.n_train} of the 950 training frames' if args.n_train else ''})", "",
          "| quantity | value |", "|---|---|",
          f"| Spearman ρ: max atomic force std vs true max atomic force error (per configuration) | {rho:.3f} |",
          f"| Spearman ρ: atomic force std vs atomic force error (per atom) | {rho_atoms:.3f} |",
          f"| Spearman ρ: energy std vs absolute energy error | {rho_e:.3f} |",
          f"| mean max atomic force std | {result['mean_max_force_std_mev_per_a']:.1f} meV/Å |",
          f"| mean max atomic force error | {result['mean_max_force_error_mev_per_a']:.1f} meV/Å |",
          f"| committee evaluation | {1000 * result['evaluation_s_per_configuration']:.1f} ms per configuration |",
          "", f"Plot: {args.save}.png. Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/committee_uncertainty.py "
          f"--members {args.members} --minutes {args.minutes:g}"
          f"{f' --n-train {args.n_train}' if args.n_train else ''}{f' --save {args.save}' if args.save != 'committee-ethanol' else ''}`."]
    (out / f"{args.save}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
