"""The report of an active-learning run: ``report.json`` (every number), ``report.md`` (tables),
``report.png`` (labels, uncertainty and true error per iteration) and ``MODEL_CARD.md`` (the
committee, its data and their provenance, its test errors), all written atomically."""

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..io import atomic_path
from ..training.provenance import data_provenance, provenance_table


def _fmt(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def iteration_rows(state: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One row per iteration: labels (new, total), the exploration's spread and the true error."""
    rows, total = [], 0
    for rec in state["iterations"]:
        total += int(rec.get("labels", 0))
        ex, te = rec.get("explore", {}), rec.get("true_error") or {}
        rows.append({
            "iteration": rec["iteration"], "frames_explored": ex.get("frames"), "runs_completed": ex.get("completed"),
            "runs": ex.get("runs"), "above_threshold": ex.get("above_threshold"),
            "mean_max_force_std_mev_per_a": ex.get("mean_max_force_std_mev_per_a"),
            "selected": rec.get("selected"), "labels": rec.get("labels", 0), "failed": rec.get("failed", 0),
            "labels_total": total,
            "true_forces_mae_mev_per_a": te.get("forces_mae_mev_per_a"),
            "true_max_force_error_mev_per_a": te.get("max_force_error_mev_per_a"),
            "selected_max_force_std_mev_per_a": te.get("max_force_std_mev_per_a"),
            "spearman_std_vs_error": te.get("spearman_std_vs_error"),
            "wall_s": round(sum((rec.get("wall_s") or {}).values()), 1),
        })
    return rows


def plot_report(rows: List[Dict[str, Any]], test: Optional[Dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = [r["iteration"] for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    ax[0].bar(its, [r["labels"] for r in rows], color="tab:blue", label="new labels")
    ax[0].plot(its, [r["labels_total"] for r in rows], "o-", color="tab:orange", label="labels so far")
    ax[0].set_xlabel("iteration")
    ax[0].set_ylabel("DFT labels")
    ax[0].legend()

    def series(key):
        pts = [(r["iteration"], r[key]) for r in rows if r.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    for key, label, style in (("true_forces_mae_mev_per_a", "force MAE on the new labels", "o-"),
                              ("true_max_force_error_mev_per_a", "max atomic force error (mean)", "s-"),
                              ("selected_max_force_std_mev_per_a", "max atomic force std of those frames", "^--"),
                              ("mean_max_force_std_mev_per_a", "max atomic force std over the exploration", "v:")):
        x, y = series(key)
        if x:
            ax[1].plot(x, y, style, label=label)
    if test and test.get("forces_mae_mev_per_a") is not None:
        ax[1].axhline(test["forces_mae_mev_per_a"], color="k", lw=1, ls="--",
                      label=f"final test force MAE ({test['frames']} fresh frames)")
    ax[1].set_xlabel("iteration")
    ax[1].set_ylabel("meV/Å")
    ax[1].set_yscale("log")
    ax[1].set_title("before training on each iteration's labels")
    ax[1].legend(fontsize=7)
    for a in ax:
        a.grid(alpha=0.3)
        a.set_xticks(its)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


_FLAGS = {"timestep_fs": "--timestep", "friction_per_fs": "--friction"}
_ALWAYS = ("steps", "threshold", "upper_bound", "budget_labels")
_NOT_OPTIONS = {"structures", "dft", "run_dir", "potential", "from_scratch", "model_config", "temperatures"}


def _command_line(cmd: Dict[str, Any]) -> str:
    """The ``geoff learn`` command of the run: the main settings and every other one not at its default."""
    from dataclasses import MISSING, fields

    from .settings import LearnSettings

    start = "--from-scratch" if cmd.get("from_scratch") else (cmd.get("potential") or {}).get("name", "?")
    structures = " ".join(Path(s["path"]).name for s in cmd["structures"])
    temps = " ".join(f"{t:g}" for t in cmd["temperatures"])
    parts = [f"geoff learn {start} {structures} --dft {cmd['dft']}"]
    if cmd.get("model_config"):
        parts.append(f"--model-config {Path(cmd['model_config']['path']).name}")
    parts.append(f"--temperature {temps}")
    for f in fields(LearnSettings):
        if f.name in _NOT_OPTIONS or f.name not in cmd:
            continue
        default = f.default if f.default is not MISSING else None
        value = cmd[f.name]
        if value is not None and (f.name in _ALWAYS or value != default):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            parts.append(f"{_FLAGS.get(f.name, '--' + f.name.replace('_', '-'))} {shown}")
    return " ".join(parts)


def write_report(run_dir: Path, state: Dict[str, Any], base: Dict[str, Any]) -> None:
    run_dir = Path(run_dir)
    rows = iteration_rows(state)
    test = state.get("test")
    cmd = state["command"]
    provenance = data_provenance(run_dir / "labels.xyz")
    report = {"command": cmd, "stop_reason": state["stop_reason"], "labels_total": state["labels_total"],
              "elapsed_s": round(float(state["elapsed_s"]), 1), "iterations": rows, "test": test,
              "data_provenance": provenance}
    with atomic_path(run_dir / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    plot_report(rows, test, run_dir / "report.png")

    lines = [f"# Active learning: {Path(cmd['run_dir']).name}", "",
             f"`{_command_line(cmd)}`", "",
             f"Started from {base['name']}; {len(rows)} iteration(s), {state['labels_total']} DFT labels "
             f"({cmd['dft']}), stopped by: **{state['stop_reason']}**; "
             f"{float(state['elapsed_s']) / 60:.1f} minutes of wall time.", "",
             "| iteration | frames explored | runs finished | above threshold | new labels | labels so far | "
             "true force MAE (meV/Å) | true max atomic force error (meV/Å) | committee max force std (meV/Å) | "
             "Spearman std vs error | wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        spear = "–" if r["spearman_std_vs_error"] is None else f"{r['spearman_std_vs_error']:.2f}"
        runs = f"{r['runs_completed']}/{r['runs']}" if r["runs"] else "–"
        lines.append(f"| {r['iteration']} | {r['frames_explored'] if r['runs'] else '–'} | {runs} | "
                     f"{r['above_threshold'] if r['above_threshold'] is not None else '–'} | {r['labels']} | "
                     f"{r['labels_total']} | {_fmt(r['true_forces_mae_mev_per_a'])} | "
                     f"{_fmt(r['true_max_force_error_mev_per_a'])} | {_fmt(r['selected_max_force_std_mev_per_a'])} | "
                     f"{spear} | {r['wall_s']} |")
    lines += ["", "True error: the committee (for iteration 0 the start potential) against each iteration's new "
              "labels, before training on them. Committee max force std: the largest atomic force standard "
              "deviation of each of those frames, averaged.", "", "![report](report.png)", ""]
    lines += ["## Final test", ""]
    lines += [_test_text(test), ""]
    lines += ["## Files", "",
              "- `committee.pt`: the final committee (geoff.load, geoff md, GeoffCalculator with energy_std, "
              "forces_std, max_force_std); its members are `iter-NNN/member-K/best.pt` of the last iteration.",
              "- `labels.xyz`: every DFT label (extended XYZ; geoff train / geoff finetune read it as it is).",
              "- `test/labels.xyz`: the test labels; `learn.json`: the run's state; `MODEL_CARD.md`.", ""]
    with atomic_path(run_dir / "report.md") as tmp:
        tmp.write_text("\n".join(lines))
    _write_model_card(run_dir, state, base, rows, test, provenance)


def _first_labels(state: Dict[str, Any]) -> str:
    first = state["iterations"][0] if state["iterations"] else {}
    if not str(first.get("selected_by", "")).startswith("start structures"):
        return ""
    return f"The first {first.get('labels', 0)} labels: {first['selected_by']}. Then: "


def _test_text(test: Optional[Dict[str, Any]]) -> str:
    if not test or not test.get("frames"):
        return "No test frames (--test-frames 0)."
    spear = test.get("spearman_std_vs_error")
    return (f"{test['frames']} frames of independent MD with the final committee (other seeds), labelled with DFT: "
            f"force MAE {test['forces_mae_mev_per_a']:.1f} meV/Å (RMSE {test['forces_rmse_mev_per_a']:.1f}), energy "
            f"MAE {test['energy_mae_mev_per_atom']:.2f} meV/atom, max atomic force error {test['max_force_error_mev_per_a']:.1f} "
            f"meV/Å against a committee max force std of {_fmt(test.get('max_force_std_mev_per_a'))} meV/Å"
            + (f" (Spearman {spear:.2f})." if spear is not None else "."))


def _write_model_card(run_dir: Path, state, base, rows, test, provenance) -> None:
    from ..io import read_payload

    cmd = state["command"]
    payload = read_payload(run_dir / "committee.pt")
    members = payload["config"]["members"]
    m0 = members[0]
    hyper = ", ".join(f"{k} {v}" for k, v in m0["config"].items()
                      if k not in ("species", "reference_energies", "energy_scale", "cutoff"))
    temps = ", ".join(f"{t:g}" for t in cmd["temperatures"])
    lines = [f"# {Path(cmd['run_dir']).name} — model card (geoff learn)", "",
             f"A committee of {len(members)} {m0['model_type']} potentials made by active learning from "
             f"{base['name']} with {state['labels_total']} {cmd['dft']} labels computed by geoff itself.", "",
             "```python", "import geoff", f"committee = geoff.load(\"{run_dir / 'committee.pt'}\")", "```", "",
             "## Model", "", "| | |", "|---|---|",
             f"| members | {len(members)} × {m0['model_type']} ({hyper}) |",
             f"| species | {', '.join(m0['config']['species'])} |",
             f"| cutoff | {m0['config'].get('cutoff')} Å |",
             f"| started from | {base['name']} |", "",
             "## Data and provenance", "",
             f"{_first_labels(state)}Configurations from Langevin MD with the committee at {temps} K ({cmd['steps']} steps of "
             f"{cmd['timestep_fs']:g} fs per run), chosen where the committee's max atomic force std was in "
             f"({cmd['threshold']:g}, {cmd['upper_bound']:g}] eV/Å, at most {cmd['max_per_iteration']} per iteration "
             f"and {cmd['min_spacing']} steps apart; labelled with DFT as below.", "",
             provenance_table(provenance), "",
             "## Errors", "", _test_text(test), "",
             f"Per iteration: report.md. Stopped by: {state['stop_reason']}.", ""]
    with atomic_path(run_dir / "MODEL_CARD.md") as tmp:
        tmp.write_text("\n".join(lines))
