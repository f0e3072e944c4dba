"""geoff speed benchmark: one command, one table.

    .venv/bin/python benchmarks/run.py                    # full table, all paths (1–2 hours on 2 cores)
    .venv/bin/python benchmarks/run.py --quick            # ~2 minutes: small systems, fewer repeats
    .venv/bin/python benchmarks/run.py --models geoff-egnn,mace-small --systems ethanol,water-1536 --paths torch
    .venv/bin/python benchmarks/run.py --save cpu         # also write benchmarks/results/cpu.md and cpu.json

Every (model, system, path) cell runs in a fresh subprocess (peak memory is
that cell's alone): geoff models through benchmarks/worker.py in this
environment, peers through benchmarks/peers/runner.py in the benchmark-only
environment benchmarks/.venv-peers (create it with
``bash benchmarks/peers/setup.sh``; without it peer rows say "not installed").
All weights are random (seeded): speed does not depend on their values.

Columns: median ms per step, steps/s, atom-steps/s (= atoms × steps/s), peak
memory (MiB of resident memory one step adds on top of the loaded model and
structure), and the ratio of the row's ms/step to geoff-egnn's (the default
size) on the same system and path in this run (> 1: slower than geoff).
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from systems import DEFAULT_SYSTEMS, QUICK_SYSTEMS, make_system  # noqa: E402

PEERS_PYTHON = os.path.join(HERE, ".venv-peers", "bin", "python")
GEOFF_MODELS = ["geoff-egnn-small", "geoff-egnn", "geoff-egnn-compiled", "geoff-se3", "geoff-se3-compiled"]
OPTIONAL_MODELS: List[str] = []
PEER_MODELS = ["mace-small", "mace-medium", "tensornet", "nequip", "egnn-pytorch", "se3-pytorch"]
REFERENCE = "geoff-egnn"
COMPILED_REFERENCE = "geoff-egnn-compiled"
#: Largest system (atoms) each peer is run on by default, and why: a cell that
#: would take minutes per step on 2 cores says so instead of running.
PEER_LIMITS = {
    "mace-small": (6144, "MACE small takes ~1 min/step at 6 144 atoms here"),
    "mace-medium": (1536, "MACE medium takes > 30 s/step at 1 536 atoms here"),
    "tensornet": (6144, "> 25 s/step at 6 144 atoms here"),
    "nequip": (6144, "> 20 s/step at 6 144 atoms here"),
    "egnn-pytorch": (1000, "dense all-pairs model: O(N²) memory"),
    "se3-pytorch": (15, "dense SE(3)-Transformer: ~2 s/step at 15 atoms here"),
}
GEOFF_LIMITS = {"geoff-egnn": (20736, "eager: ~330 KiB per atom, 62 208 atoms would need ~20 of the 24 GiB"),
                "geoff-se3": (6144, "~1.5 MiB per atom: 20 000 atoms would not fit in 24 GiB"),
                "geoff-se3-compiled": (6144, "~1.5 MiB per atom: 20 000 atoms would not fit in 24 GiB")}
ASE_PEER_LIMIT = 1536
PATHS_OF = {  # paths each model family can run
    "geoff": ("torch", "ase", "openmm", "openmm-py"),
    "mace-small": ("torch", "ase"), "mace-medium": ("torch", "ase"), "nequip": ("torch", "ase"),
    "tensornet": ("torch",), "egnn-pytorch": ("torch",), "se3-pytorch": ("torch",),
}
DENSE_NO_PBC = ("egnn-pytorch", "se3-pytorch")


def skip_reason(model: str, system: str, path: str, atoms: int, periodic: bool, all_sizes: bool) -> Optional[str]:
    family = "geoff" if model.startswith("geoff") else model
    if path not in PATHS_OF.get(family, ()) or (model.endswith("-compiled") and path == "openmm"):
        return f"no {path} path"
    if model.startswith("geoff"):
        limit, why = GEOFF_LIMITS.get(model, (None, ""))
        if limit is not None and atoms > limit and not all_sizes:
            return f"> {limit} atoms ({why}; --all-sizes runs it)"
        return None
    if not os.path.exists(PEERS_PYTHON):
        return "peers not installed (bash benchmarks/peers/setup.sh)"
    if model in DENSE_NO_PBC and periodic:
        return "no periodic boundaries"
    if path == "ase" and atoms > ASE_PEER_LIMIT and not all_sizes:
        return f"> {ASE_PEER_LIMIT} atoms on the ASE path (the step is the torch call + ~1 ms; --all-sizes runs it)"
    limit, why = PEER_LIMITS.get(model, (None, ""))
    if limit is not None and atoms > limit and not all_sizes:
        return f"> {limit} atoms ({why}; --all-sizes runs it)"
    return None


def run_cell(model: str, system: str, path: str, args) -> Dict[str, object]:
    """Run one cell in a subprocess and return its RESULT dict (ok False on failure)."""
    if model.startswith("geoff"):
        cmd = [sys.executable, os.path.join(HERE, "worker.py")]
    else:
        cmd = [PEERS_PYTHON, os.path.join(HERE, "peers", "runner.py")]
    cmd += ["--model", model, "--system", system, "--path", path, "--threads", str(args.threads),
            "--repeats", str(args.repeats), "--max-seconds", str(args.max_seconds),
            "--warmup", str(args.warmup), "--dtype", args.dtype, "--device", args.device]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONWARNINGS="ignore")
    if model.startswith("geoff"):
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.cell_timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {args.cell_timeout:.0f} s"}
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return {"ok": False, "error": f"exit {proc.returncode}: {tail}"}


def fmt(x: Optional[float], digits: int = 3) -> str:
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.{digits}g}"


def table(rows: List[Dict[str, object]]) -> str:
    head = ["model", "system", "path", "atoms", "ms/step", "steps/s", "atom-steps/s", "peak MiB", f"× {REFERENCE}",
            f"× {COMPILED_REFERENCE}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def ratio(r, reference):
        refs = {(q["system"], q["path"]): q["ms"] for q in rows if q["model"] == reference and q.get("ok")}
        if r["model"] == reference:
            return "1"
        ref = refs.get((r["system"], r["path"]))
        return f"{r['ms'] / ref:.3g}" if ref else "—"

    for r in rows:
        if r.get("ok"):
            ms = r["ms"]
            sps = 1e3 / ms
            cells = [r["model"], r["system"], r["path"], str(r["atoms"]), fmt(ms), fmt(sps), f"{sps * r['atoms']:.3g}",
                     fmt(r["peak_mib"]), ratio(r, REFERENCE), ratio(r, COMPILED_REFERENCE)]
        else:
            cells = [r["model"], r["system"], r["path"], str(r.get("atoms", "")), "—", "—", "—", "—",
                     str(r.get("error") or r.get("skipped")), ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: List[Dict[str, object]], path: str, title: str) -> None:
    """ms/step and peak MiB per atom against atoms, one line per (model, path), log-log (torch path solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sys.path.insert(0, ROOT)
    from geoff.io import atomic_path

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    series: Dict[tuple, List[tuple]] = {}
    for r in rows:
        if r.get("ok"):
            series.setdefault((r["model"], r["path"]), []).append((r["atoms"], r["ms"], r["peak_mib"]))
    for (model, route), pts in sorted(series.items()):
        pts.sort()
        n = [p[0] for p in pts]
        style = "-" if route == "torch" else ("--" if route == "ase" else ":")
        marker = "o" if model.startswith("geoff") else "s"
        ax1.plot(n, [p[1] for p in pts], style, marker=marker, label=f"{model} ({route})")
        ax2.plot(n, [1024 * p[2] / p[0] for p in pts], style, marker=marker)
    ax1.set(xscale="log", yscale="log", xlabel="atoms", ylabel="median ms per step (energy + forces)")
    ax2.set(xscale="log", yscale="log", xlabel="atoms", ylabel="peak memory per atom, KiB")
    ax1.grid(True, which="both", alpha=0.3)
    ax2.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=6, ncol=2)
    fig.suptitle(title + " — random weights", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def accuracy_lines(args) -> List[str]:
    """Force MAE of the shipped potential on ethanol test_MD.xyz, if present."""
    cmd = [sys.executable, os.path.join(HERE, "accuracy.py"), "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=ROOT)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        return [l for l in proc.stdout.splitlines() if l.startswith("|") or l.startswith("accuracy")] or \
            [f"accuracy: not measured ({(proc.stderr.strip().splitlines() or ['no output'])[-1][:200]})"]
    except subprocess.TimeoutExpired:
        return ["accuracy: timed out"]


def header(args) -> List[str]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    device = args.device if args.device == "cpu" else torch.cuda.get_device_name(0)
    return [
        f"geoff benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"device {device}; CPU {cpu}, {os.cpu_count()} cores, {args.threads} torch thread(s) per cell; "
        f"torch {torch.__version__}; {args.dtype}",
        "RANDOM WEIGHTS (speed only); neighbour list rebuilt every step; one fresh process per cell; "
        f"median of up to {args.repeats} steps after {args.warmup} warm-up steps (at most {args.max_seconds:g} s per cell)",
        "paths: torch = structure → graph → energy + forces (eager PyTorch; *-compiled: geoff.CompiledPotential, "
        "compiled before timing, open molecules ≤ 32 atoms as the complete graph); ase = one VelocityVerlet step "
        "through the ASE calculator; openmm = one OpenMM VerletIntegrator step, CPU platform, geoff's TorchForce; "
        "openmm-py = the same through geoff's PythonForce",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(GEOFF_MODELS + PEER_MODELS),
                        help="comma-separated models (default: all but %s); geoff: %s; peers: %s"
                        % (", ".join(OPTIONAL_MODELS), ", ".join(GEOFF_MODELS + OPTIONAL_MODELS),
                           ", ".join(PEER_MODELS)))
    parser.add_argument("--systems", default=None, help=f"comma-separated systems (default {','.join(DEFAULT_SYSTEMS)}; "
                        "also water-N, cluster-N)")
    parser.add_argument("--paths", default="torch,ase,openmm,openmm-py",
                        help="comma-separated: torch, ase, openmm (TorchForce), openmm-py (PythonForce)")
    parser.add_argument("--quick", action="store_true", help=f"systems {','.join(QUICK_SYSTEMS)}, torch path, "
                        "geoff + the fastest peers, few repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per cell (default 1)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=8.0, help="time budget of one cell's timed steps")
    parser.add_argument("--cell-timeout", type=float, default=900.0, help="kill a cell after this many seconds")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--all-sizes", action="store_true", help="run peers on every system, however slow")
    parser.add_argument("--accuracy", action="store_true", help="add the ethanol test force MAE (benchmarks/accuracy.py)")
    parser.add_argument("--save", metavar="NAME", help="write benchmarks/results/NAME.md and NAME.json")
    parser.add_argument("--replot", metavar="NAME", help="only re-print the table and redraw NAME.png from "
                        "benchmarks/results/NAME.json")
    args = parser.parse_args(argv)

    if args.replot:
        out = os.path.join(HERE, "results", args.replot)
        with open(out + ".json") as f:
            saved = json.load(f)
        print("\n".join(saved["header"]) + "\n\n" + table(saved["rows"]))
        plot(saved["rows"], out + ".png", " ".join(saved["header"][:2]))
        print(f"saved {out}.png")
        return 0
    if args.quick:
        args.systems = args.systems or ",".join(QUICK_SYSTEMS)
        if "--paths" not in " ".join(argv or sys.argv):
            args.paths = "torch"
        if "--models" not in " ".join(argv or sys.argv):
            args.models = "geoff-egnn-small,geoff-egnn,geoff-egnn-compiled,geoff-se3,nequip,tensornet,egnn-pytorch"
        args.repeats, args.max_seconds, args.warmup = min(args.repeats, 10), min(args.max_seconds, 3.0), 2
    systems = (args.systems or ",".join(DEFAULT_SYSTEMS)).split(",")
    models = args.models.split(",")
    paths = args.paths.split(",")
    unknown = [m for m in models if m not in GEOFF_MODELS + OPTIONAL_MODELS + PEER_MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {GEOFF_MODELS + OPTIONAL_MODELS + PEER_MODELS}")

    info = {}
    for s in systems:
        atoms = make_system(s)
        info[s] = (len(atoms), bool(atoms.pbc.any()))

    cells = [(m, s, p) for s in systems for p in paths for m in models]
    rows: List[Dict[str, object]] = []
    notes = set()
    try:
        from tqdm import tqdm
        bar = tqdm(cells, desc="benchmark", unit="cell", file=sys.stderr)
    except ImportError:  # pragma: no cover
        bar = cells
    t0 = time.time()
    for m, s, p in bar:
        n, periodic = info[s]
        why = skip_reason(m, s, p, n, periodic, args.all_sizes)
        if why is None:
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{m} {s} {p}")
            r = run_cell(m, s, p, args)
            r.update(model=m, system=s, path=p, atoms=r.get("atoms", n))
            err = str(r.get("error"))
            if r.get("ok") or not ("does not exist" in err or "path skipped" in err):
                rows.append(r)
            else:  # a model or path this checkout does not have yet: one note, not a row per system
                notes.add(f"{m} {p}: {err}")
        elif not why.startswith("no ") or why == "no periodic boundaries":
            rows.append({"model": m, "system": s, "path": p, "atoms": n, "ok": False, "skipped": why})
    lines = header(args) + [f"wall time {time.time() - t0:.0f} s", ""] + [table(rows)]
    lines += [f"not run: {n}" for n in sorted(notes)]
    compiles = [f"{r['model']} {r['system']} {r['path']} {r['compile_s']:.0f} s" for r in rows
                if r.get("ok") and r.get("compile_s")]
    if compiles:
        lines += ["", "first call (torch.compile, before the timed steps): " + "; ".join(compiles)]
    if args.accuracy:
        lines += [""] + accuracy_lines(args)
    text = "\n".join(lines)
    print(text)
    if args.save:
        sys.path.insert(0, ROOT)
        from geoff.io import atomic_path

        out = os.path.join(HERE, "results", args.save)
        with atomic_path(out + ".md") as tmp:
            tmp.write_text("```\n" + "\n".join(header(args)) + "\n```\n\n" + "\n".join(lines[len(header(args)):]) + "\n")
        with atomic_path(out + ".json") as tmp:
            tmp.write_text(json.dumps({"header": header(args), "rows": rows}, indent=1))
        plot(rows, out + ".png", " ".join(header(args)[:2]))
        print(f"saved {out}.md, {out}.json and {out}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
