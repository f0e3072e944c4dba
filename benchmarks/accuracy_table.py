"""Accuracy per CPU budget: one table and one plot from finished training runs.

    .venv/bin/python benchmarks/accuracy_table.py runs/accuracy/*/          # every run folder given
    .venv/bin/python benchmarks/accuracy_table.py runs/ethanol-egnn --keep   # add a run to the committed table
    make bench-accuracy                                                     # trains the runs, then this

For each run folder (written by ``geoff train`` or ``geoff finetune``) it reads
``summary.yaml`` (test and validation errors of the best EMA weights),
``config.yaml`` (data, model, budget) and ``metrics.csv`` (validation errors
after each epoch), and writes

- ``benchmarks/results/accuracy.md``: one row per run: data set, model, start
  (scratch or the potential it was fine-tuned from), training minutes, epochs,
  test energy MAE (meV/atom) and force MAE/RMSE (meV/Å), validation force MAE;
  MACE rows from ``benchmarks/results/mace-*-accuracy.json`` where they exist
  (MACE small trained by its own trainer on the same split, same machine);
- ``benchmarks/results/accuracy.png``: validation force MAE against training
  minutes for every run (one panel per data set), the learning curves that
  say whether more budget would still pay.

Training minutes are wall-clock minutes of the training loop on the machine
that ran it (``optim.max_time_minutes`` is that budget); the load of a shared
machine changes how much work fits in them, so compare runs made side by side.
CPU minutes (the process's CPU time in the same stretches, all its threads)
say how much of the machine each run actually got.
"""

import argparse
import csv
import glob
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def _dataset(cfg: dict) -> str:
    train = cfg["data"]["train"]
    train = train[0] if isinstance(train, list) else train
    return os.path.basename(os.path.dirname(str(train))) or str(train)


def _model(cfg: dict) -> str:
    m = cfg["model"]
    if m["type"] == "egnn":
        coords = "" if m.get("update_coords", True) else ", no coordinate updates"
        return f"EGNN {m.get('hidden')}x{m.get('num_layers')}{coords}"
    return f"SE(3)-T l{m.get('lmax', 1)} c{m.get('channels')} x{m.get('num_layers')}"


def read_run(run_dir: str) -> dict:
    with open(os.path.join(run_dir, "config.yaml")) as fh:
        cfg = yaml.safe_load(fh)
    with open(os.path.join(run_dir, "summary.yaml")) as fh:
        summary = yaml.safe_load(fh)
    curve = []  # after each epoch: wall minutes, CPU minutes (None before geoff counted them), valid F MAE, epoch, lr
    with open(os.path.join(run_dir, "metrics.csv")) as fh:
        for row in csv.DictReader(fh):
            cpu = float(row["cpu_s"]) / 60.0 if row.get("cpu_s") else None
            curve.append((float(row["time_s"]) / 60.0, cpu, float(row["valid_forces_mae_mev_per_a"]),
                          int(row["epoch"]), float(row["lr"])))
    start = cfg.get("finetune", {}).get("from")
    o = cfg["optim"]
    return {
        "run": os.path.basename(os.path.normpath(run_dir)), "dataset": _dataset(cfg), "model": _model(cfg),
        "start": f"fine-tuned from {start}" if start else "scratch",
        "recipe": f"lr {o['lr']:g}, batch {o['batch_size']}",
        "minutes": summary["train_time_s"] / 60.0, "epochs": int(summary["epochs"]),
        "cpu_minutes": summary["train_cpu_s"] / 60.0 if "train_cpu_s" in summary else None,
        "test_e": summary.get("test_energy_mae_mev_per_atom"), "test_f": summary.get("test_forces_mae_mev_per_a"),
        "test_f_rmse": summary.get("test_forces_rmse_mev_per_a"), "valid_f": summary.get("valid_forces_mae_mev_per_a"),
        "curve": curve,
    }


def mace_rows() -> list:
    rows = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "mace-*-accuracy.json"))):
        with open(path) as fh:
            r = json.load(fh)
        name = r.get("dataset") or os.path.basename(path)[len("mace-"):-len("-accuracy.json")]
        curve = [(c["wall_minutes"], c["cpu_minutes"], c["valid_force_mae"], k + 1, None)
                 for k, c in enumerate(r.get("curve", []))]
        rows.append({"run": f"MACE ({os.path.basename(path)})", "dataset": name, "model": "MACE small",
                     "start": "scratch", "recipe": "MACE defaults",
                     "minutes": r.get("wall_minutes", r["budget_minutes"]), "cpu_minutes": r.get("cpu_minutes"),
                     "epochs": r["epochs"], "test_e": r.get("energy_mae_mev_per_atom"),
                     "test_f": r.get("force_mae_mev_per_a"), "test_f_rmse": r.get("force_rmse_mev_per_a"),
                     "valid_f": r.get("valid_force_mae"), "curve": curve})
    return rows


def _fmt(v, digits: int) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def table(rows: list) -> str:
    lines = ["| data | model | start | recipe | minutes | CPU minutes | epochs | test E MAE (meV/atom) | test F MAE (meV/Å) "
             "| test F RMSE (meV/Å) | valid F MAE (meV/Å) | run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["minutes"], r["test_f"] or 0.0)):
        lines.append(f"| {r['dataset']} | {r['model']} | {r['start']} | {r['recipe']} | {r['minutes']:.0f} "
                     f"| {_fmt(r.get('cpu_minutes'), 0)} | {r['epochs']} | {_fmt(r['test_e'], 2)} | {_fmt(r['test_f'], 1)} | {_fmt(r['test_f_rmse'], 1)} "
                     f"| {_fmt(r['valid_f'], 1)} | {r['run']} |")
    return "\n".join(lines)


def plot(rows: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows if r["curve"]})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        for r in rows:
            if r["dataset"] == ds and r["curve"]:
                t = [c[1] if c[1] is not None else c[0] for c in r["curve"]]
                f = [c[2] for c in r["curve"]]
                ax.plot(t, f, ls="--" if r["model"].startswith("MACE") else "-", label=f"{r['run']} ({r['epochs']} epochs): {r['model']}, {r['recipe']}")
        for r in rows:
            if r["dataset"] == ds and not r["curve"] and r["valid_f"]:
                ax.scatter([r["minutes"]], [r["valid_f"]], marker="*", s=120, color="k", label=r["run"], zorder=3)
        ax.set_yscale("log")
        ax.set_xlabel("CPU minutes of training (★: wall minutes, CPU not counted)")
        ax.set_ylabel("validation force MAE (meV/Å)")
        ax.set_title(ds)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def extrapolate(rows: list, targets=(5.0, 3.0), first_epoch: int = 50) -> str:
    """Budget to reach ``targets`` (meV/Å validation force MAE; the published class on rMD17 ethanol)
    from each geoff ethanol curve.

    Fits log(best validation force MAE so far) = a + b log(epoch) over the later half of the curve
    before the final anneal (from half the pre-anneal epochs, at least ``first_epoch``, to the last
    epoch before the learning rate starts falling step by step), and converts epochs to CPU minutes
    with the run's own CPU minutes per epoch. A power law fitted to the early epochs alone promises
    far too much: the shipped 115-minute run's first 600 epochs extrapolate to 5 meV/Å at ~1 500
    epochs, but it stood at 6.0 after 2 000 and 5.8 after 2 789. The later half is the most recent
    evidence of how fast the recipe still improves, so the estimate is what continuing it would give
    (a larger model or another schedule is a different curve).
    """
    import numpy as np

    lines = ["| run | fitted epochs | exponent b | CPU min/epoch | " + " | ".join(
        f"epochs to {t:g} meV/Å | CPU hours to {t:g} meV/Å" for t in targets) + " |",
             "|---|---|---|---|" + "---|---|" * len(targets)]
    for r in rows:
        c = r["curve"]
        if r["dataset"] != "ethanol" or r["model"].startswith("MACE") or not c or c[-1][1] is None:
            continue
        lr = np.array([x[4] for x in c], float)
        epochs = np.array([x[3] for x in c], float)
        # the anneal starts after the last epoch whose learning rate equals the one before and is above
        # the floor (before it the rate is constant or halved on plateaus; in it, it falls every epoch)
        flat = [k for k in range(1, len(c)) if lr[k] == lr[k - 1] and lr[k] > lr.min()]
        end = epochs[flat[-1]] if flat else epochs[-1]
        lo = max(first_epoch, end / 2)
        keep = (epochs >= lo) & (epochs <= end)
        if keep.sum() < 10:
            continue
        best = np.minimum.accumulate(np.array([x[2] for x in c], float))[keep]
        e = epochs[keep]
        b, a = np.polyfit(np.log(e), np.log(best), 1)
        per_epoch = c[-1][1] / c[-1][3]
        cells = []
        for t in targets:
            n = float(np.exp((np.log(t) - a) / b)) if b < 0 else float("inf")
            cells.append(f"{n:,.0f} | {n * per_epoch / 60.0:.1f}")
        lines.append(f"| {r['run']} | {int(e[0])}–{int(e[-1])} | {b:.2f} | {per_epoch:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders of geoff train / geoff finetune")
    p.add_argument("--output", default=os.path.join(RESULTS, "accuracy"), help="path stem of the .md/.png/.json")
    p.add_argument("--keep", action="store_true",
                   help="keep the geoff rows of the existing OUTPUT.json whose run folders are not given "
                        "(runs measured earlier, on another day or machine); given folders replace rows of their name")
    args = p.parse_args(argv)
    rows = [read_run(r) for r in args.runs if os.path.isfile(os.path.join(r, "summary.yaml"))]
    missing = [r for r in args.runs if not os.path.isfile(os.path.join(r, "summary.yaml"))]
    if args.keep and os.path.isfile(args.output + ".json"):
        with open(args.output + ".json") as fh:
            earlier = json.load(fh)
        names = {r["run"] for r in rows}
        rows += [r for r in earlier if r["run"] not in names and not r["run"].startswith("MACE (")]
    rows += mace_rows()
    text = table(rows)
    budget = extrapolate(rows)
    if budget.count("\n") > 1:
        text += ("\n\nEthanol: budget to the published class (≤ 3 meV/Å), extrapolated from each geoff learning curve (power law of the "
                 "best validation force MAE in epochs over the later half of the curve before the final anneal, "
                 "converted with the run's CPU minutes per epoch):\n\n" + budget)
    print(text)
    if missing:
        print(f"(unfinished, left out: {', '.join(missing)})")
    with open(args.output + ".md", "w") as fh:
        fh.write(text + "\n")
    with open(args.output + ".json", "w") as fh:
        json.dump(rows, fh, indent=1)
    plot(rows, args.output + ".png")
    print(f"wrote {args.output}.md, .json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
