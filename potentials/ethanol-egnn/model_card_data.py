"""Measure everything the model card of a potential reports, and draw its plots.

    OMP_NUM_THREADS=1 .venv/bin/python potentials/ethanol-egnn/model_card_data.py \
        [--potential ethanol-egnn] [--output potentials/ethanol-egnn] [--md-ps 10]

Writes into --output: model_card_data.json (all numbers), parity_test_MD.png,
ood_H_removal.png, ood_dimers.png, ood_normal_modes.png and, with --md-ps,
md_stability.png. Data: ../shared/data/ethanol (eV, Å).
"""

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.data import chemical_symbols  # noqa: E402

import geoff  # noqa: E402
from geoff.io import atomic_path  # noqa: E402
from geoff.training.data import collate, precompute_edges, read_dataset, split_isolated_atoms  # noqa: E402
from geoff.training.predict import predict  # noqa: E402
from geoff.training.evaluate import evaluate_potential, format_table  # noqa: E402
from geoff.training.plots import parity_plot  # noqa: E402

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "ethanol"


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def energies(pot, samples):
    return torch.cat([out["energy"] for _, out in predict(pot, samples, 64, compute_forces=False)]).double().numpy()


def info_values(path, key):
    import ase.io

    return np.array([a.info[key] for a in ase.io.read(path, index=":")]), \
        [a.info.get("config_type") for a in ase.io.read(path, index=":")]


def ood(pot, e0, out_dir):
    """Out-of-distribution curves: model vs DFT. Energies relative to the sum of DFT isolated-atom energies."""
    res = {}
    ref_sum = lambda s: sum(e0[chemical_symbols[int(z)]] for z in s.numbers)  # noqa: E731
    # H removal
    s = read_dataset(DATA / "test_H_removal.xyz")
    x, _ = info_values(DATA / "test_H_removal.xyz", "OH_dist")
    dft, model = np.array([a.energy for a in s]), energies(pot, s)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(x, dft - dft.min(), "k-", label="DFT")
    ax.plot(x, model - dft.min(), "C0--", label="geoff")
    ax.set_xlabel("O–H distance (Å)")
    ax.set_ylabel("E − min E_DFT (eV)")
    ax.set_title("hydroxyl H removal")
    ax.legend()
    _save(fig, out_dir / "ood_H_removal.png")
    near = x < 1.6
    res["H_removal_energy_mae_mev_OH_below_1.6A"] = 1e3 * float(np.mean(np.abs(model - dft)[near]))
    # dimers
    s = read_dataset(DATA / "test_dimers.xyz")
    d, types = info_values(DATA / "test_dimers.xyz", "distance")
    dft, model = np.array([a.energy for a in s]), energies(pot, s)
    refs = np.array([ref_sum(a) for a in s])
    fig, axes = plt.subplots(2, 3, figsize=(12, 7))
    for ax, pair in zip(axes.ravel(), ["HH", "HC", "HO", "CC", "CO", "OO"]):
        m = np.array([t == pair for t in types])
        order = np.argsort(d[m])
        ax.plot(d[m][order], (dft - refs)[m][order], "k-", label="DFT")
        ax.plot(d[m][order], (model - refs)[m][order], "C0--", label="geoff")
        both = np.concatenate([(dft - refs)[m], (model - refs)[m]])
        ax.set_ylim(both.min() - 1, min(both.max(), 10) + 1)
        ax.set_title(pair)
        ax.set_xlabel("distance (Å)")
        ax.set_ylabel("E − ΣE_atom (eV)")
        ax.legend(fontsize=8)
    fig.subplots_adjust(hspace=0.4, wspace=0.35)
    _save(fig, out_dir / "ood_dimers.png")
    res["dimers_note"] = "ethanol-only training data contain no dimers: curves show extrapolation"
    # normal modes
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, mode in zip(axes, ["874", "3005"]):
        path = DATA / f"test_norm_mode_{mode}.xyz"
        s = read_dataset(path)
        x, _ = info_values(path, "displacement")
        dft, model = np.array([a.energy for a in s]), energies(pot, s)
        i0 = int(np.argmin(np.abs(x)))
        ax.plot(x, dft - dft[i0], "k-", label="DFT")
        ax.plot(x, model - model[i0], "C0--", label="geoff")
        ax.set_title(f"normal mode {mode} cm⁻¹")
        ax.set_xlabel("displacement")
        ax.set_ylabel("E − E(0) (eV)")
        ax.legend()
        res[f"normal_mode_{mode}_energy_mae_mev_relative"] = 1e3 * float(
            np.mean(np.abs((model - model[i0]) - (dft - dft[i0]))))
    fig.subplots_adjust(wspace=0.3)
    _save(fig, out_dir / "ood_normal_modes.png")
    return res


def speed(pot):
    """Energy+forces evaluations per second for one ethanol (the MD case) and batches of 64."""
    s = read_dataset(DATA / "test_MD.xyz", index="0:64")
    precompute_edges(s, pot.cutoff)
    out = {}
    for n in (1, 64):
        batch = collate(s[:n], pot.reference_energies.dtype)
        for _ in range(3):
            pot(batch)
        reps = 50 if n == 1 else 5
        t0 = time.perf_counter()
        for _ in range(reps):
            pot(batch)
        out[f"evals_per_s_batch{n}"] = reps / (time.perf_counter() - t0)
    out["threads"] = torch.get_num_threads()
    return out


def md_stability(pot, ps, out_dir):
    """NVT at 300 K for ``ps`` ps (Langevin, 0.5 fs), then NVE for ps/4: bonds and energy drift."""
    from ase.build import molecule

    from geoff.ase import GeoffCalculator
    from geoff.ase.md import run_md

    atoms = molecule("CH3CH2OH")
    calc = GeoffCalculator(pot)
    bonds = [(i, j) for i in range(len(atoms)) for j in range(i) if atoms.get_distance(i, j) < 1.6]
    r0 = np.array([atoms.get_distance(i, j) for i, j in bonds])
    steps = int(round(ps * 1000 / 0.5))
    nvt = run_md(atoms, calc, steps=steps, timestep_fs=0.5, temperature_k=300.0, ensemble="nvt",
                 friction_per_fs=0.01, output_dir=out_dir.parent.parent / "runs" / "model-card-nvt", log_every=100,
                 seed=0, progress=True)
    from ase.io import read

    traj = read(nvt.trajectory, index=":")
    ratio = np.array([[a.get_distance(i, j) / r for (i, j), r in zip(bonds, r0)] for a in traj])
    nve = run_md(traj[-1], calc, steps=steps // 4, timestep_fs=0.5, temperature_k=300.0, ensemble="nve",
                 output_dir=out_dir.parent.parent / "runs" / "model-card-nve", log_every=20, seed=1, progress=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    t = np.arange(len(ratio)) * 100 * 0.5 / 1000
    ax.plot(t, ratio.max(1), label="max bond length / initial")
    ax.plot(t, ratio.min(1), label="min bond length / initial")
    ax.set_xlabel("time (ps)")
    ax.legend()
    ax.set_title(f"NVT 300 K, {ps} ps: bonds")
    _save(fig, out_dir / "md_stability.png")
    return {"nvt_ps": ps, "nvt_steps_per_s": nvt.steps_per_s, "nvt_mean_temperature_k": nvt.mean_temperature_k,
            "max_bond_stretch_ratio": float(ratio.max()), "min_bond_ratio": float(ratio.min()),
            "bonds_broken": bool(ratio.max() > 1.5), "nve_ps": ps / 4,
            "nve_drift_mev_per_atom_per_ps": nve.drift_mev_per_atom_per_ps,
            "nve_total_energy_std_mev_per_atom": nve.energy_fluctuation_mev_per_atom}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--potential", default="ethanol-egnn")
    p.add_argument("--output", default=str(Path(__file__).parent))
    p.add_argument("--md-ps", type=float, default=0.0, help="NVT length in ps (0: skip MD)")
    args = p.parse_args()
    out_dir = Path(args.output)
    pot = geoff.load(args.potential)
    _, e0 = split_isolated_atoms(read_dataset(DATA / "isolated_atoms.xyz"))
    test = read_dataset(DATA / "test_MD.xyz")
    summary, arrays = evaluate_potential(pot, test, 64, progress=True)
    print(format_table(summary, "test_MD.xyz"))
    parity_plot(arrays, out_dir / "parity_test_MD.png", title="ethanol-egnn on test_MD.xyz (1000 structures)")
    result = {"test_MD": summary, "ood": ood(pot, e0, out_dir), "speed": speed(pot),
              "parameters": int(sum(p.numel() for p in pot.parameters()))}
    if args.md_ps > 0:
        result["md"] = md_stability(pot, args.md_ps, out_dir)
    with atomic_path(out_dir / "model_card_data.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
