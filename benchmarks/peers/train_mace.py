"""Train MACE small on a geoff accuracy data set for a fixed wall-clock budget, then
measure its test errors (the MACE rows of benchmarks/results/accuracy.md).

    benchmarks/.venv-peers/bin/python benchmarks/peers/train_mace.py --data ethanol --budget-minutes 30
    benchmarks/.venv-peers/bin/python benchmarks/peers/train_mace.py --data 3bpa --budget-minutes 30

Same split as geoff's runs (benchmarks/accuracy/*.yaml):
- ethanol: ../shared/data/ethanol/train.xyz (1 000; 50 held out for validation),
  E0s from isolated_atoms.xyz, test on test_MD.xyz (1 000);
- 3bpa: ../shared/data/3bpa/train_300K.xyz (500; 50 held out), E0s from
  iso_atoms.xyz, test on train_mixedT.xyz (500, 300/600/1200 K).
Model: MACE small as in the speed table (128x0e, max_ell 3, correlation 3,
2 layers, r_c 5 Å) with MACE's scale/shift block and the average number of
neighbours measured on the training set. Loss (MACE's "weighted" default):
1 × (ΔE/N)² + 100 × mean |ΔF|², Adam (amsgrad) lr 0.01, batch 5, plateau
schedule, best validation weights kept, float32, 1 torch thread unless
--threads says otherwise.

Writes benchmarks/results/mace-<data>-<budget>min-accuracy.json (read by
benchmarks/accuracy_table.py: test errors, wall and CPU minutes, and the
validation force MAE after every epoch) and benchmarks/peers/mace_<data>.pt.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, BENCH)
sys.path.insert(0, HERE)
from systems import DATA  # noqa: E402

#: data set → (training pool, isolated-atom energies, test set), files under DATA/<data>/
DATASETS = {
    "ethanol": ("train.xyz", "isolated_atoms.xyz", "test_MD.xyz"),
    "3bpa": ("train_300K.xyz", "iso_atoms.xyz", "train_mixedT.xyz"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=60.0, help="wall clock for training")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--data", choices=sorted(DATASETS), default="ethanol")
    parser.add_argument("--output", default=None,
                        help="default benchmarks/results/mace-<data>-<budget>min-accuracy.json")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = os.path.join(BENCH, "results", f"mace-{args.data}-{args.budget_minutes:g}min-accuracy.json")
    train_file, iso_file, test_file = DATASETS[args.data]

    import runner  # noqa: F401  (puts MACE's e3nn 0.4.4 first on sys.path via _mace_model)
    import torch
    from ase.io import read

    torch.set_num_threads(args.threads)

    class A:  # the runner's model builder reads dtype only
        dtype = "float32"

    base = runner._mace_model(A, "128x0e")  # noqa: F841  (imports mace with the right e3nn)
    from e3nn import o3
    from mace import data as mace_data, modules
    from mace.tools import torch_geometric, utils

    d = os.path.join(DATA, args.data)
    def frames_of(path):
        # ASE puts energy/forces into a SinglePointCalculator; MACE reads them from info/arrays
        frames = read(path, ":")
        for a in frames:
            a.info["energy"] = float(a.get_potential_energy())
            if len(a) > 1:
                a.arrays["forces"] = np.asarray(a.get_forces())
            a.calc = None
        return frames

    iso = {int(a.numbers[0]): a.info["energy"] for a in frames_of(os.path.join(d, iso_file))}
    Z = sorted(iso)
    e0 = np.array([iso.get(z, 0.0) for z in Z])
    keyspec = mace_data.KeySpecification(info_keys={"energy": "energy"}, arrays_keys={"forces": "forces"})
    z_table = utils.AtomicNumberTable(Z)

    def graphs(path):
        frames = frames_of(path)
        return frames, [mace_data.AtomicData.from_config(mace_data.config_from_atoms(a, key_specification=keyspec),
                                                         z_table=z_table, cutoff=runner.CUTOFF) for a in frames]

    train_frames, train = graphs(os.path.join(d, train_file))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(train))
    valid = [train[k] for k in order[:50]]
    train = [train[k] for k in order[50:]]
    test_frames, test = graphs(os.path.join(d, test_file))
    avg_neighbours = float(np.mean([g.edge_index.shape[1] / g.num_nodes for g in train]))

    forces = np.concatenate([f.arrays["forces"] for f in train_frames])
    resid = [(f.info["energy"] - sum(iso[z] for z in f.numbers)) / len(f) for f in train_frames]
    torch.manual_seed(0)
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model = modules.ScaleShiftMACE(
        atomic_inter_scale=float(np.sqrt(np.mean(forces ** 2))), atomic_inter_shift=float(np.mean(resid)),
        r_max=runner.CUTOFF, num_bessel=8, num_polynomial_cutoff=5, max_ell=3, interaction_cls=block,
        interaction_cls_first=block, num_interactions=2, num_elements=len(Z), hidden_irreps=o3.Irreps("128x0e"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=e0, avg_num_neighbors=avg_neighbours, atomic_numbers=Z,
        correlation=3, gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64])
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, amsgrad=True)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.8, patience=5)
    loader = torch_geometric.dataloader.DataLoader(train, batch_size=args.batch_size, shuffle=True, drop_last=True)

    def evaluate(data):
        model.eval()
        err_f, err_e = [], []
        for batch in torch_geometric.dataloader.DataLoader(data, batch_size=50, shuffle=False):
            out = model(batch.to_dict(), training=False, compute_force=True)
            err_f.append((out["forces"] - batch["forces"]).detach().abs().reshape(-1))
            n_at = batch["ptr"][1:] - batch["ptr"][:-1]
            err_e.append(((out["energy"] - batch["energy"]) / n_at).detach().abs())
        model.train()
        err_f = torch.cat(err_f)
        return 1e3 * float(err_f.mean()), 1e3 * float(torch.cat(err_e).mean()), 1e3 * float(err_f.pow(2).mean().sqrt())

    budget = 60.0 * args.budget_minutes
    t0, cpu0 = time.time(), time.process_time()
    curve = []  # (wall minutes, CPU minutes, validation force MAE meV/Å) after each epoch
    steps = epochs = 0
    best = (float("inf"), None)
    from tqdm import tqdm

    bar = tqdm(total=int(budget), unit="s", desc="train MACE small")
    while time.time() - t0 < budget:
        for batch in loader:
            b = batch.to_dict()
            out = model(b, training=True, compute_force=True)
            n_at = (b["ptr"][1:] - b["ptr"][:-1]).to(out["energy"].dtype)
            loss = torch.mean(((out["energy"] - b["energy"]) / n_at) ** 2) \
                + 100.0 * torch.mean((out["forces"] - b["forces"]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if time.time() - t0 >= budget:
                break
        epochs += 1
        val_f = evaluate(valid)[0]
        curve.append(((time.time() - t0) / 60.0, (time.process_time() - cpu0) / 60.0, val_f))
        sched.step(val_f)
        if val_f < best[0]:
            best = (val_f, {k: v.detach().clone() for k, v in model.state_dict().items()})
        bar.n = int(min(budget, time.time() - t0))
        bar.set_postfix_str(f"epoch {epochs} valid force MAE {val_f:.1f} meV/Å")
    bar.close()
    wall_min, cpu_min = (time.time() - t0) / 60.0, (time.process_time() - cpu0) / 60.0
    if best[1] is not None:
        model.load_state_dict(best[1])
    test_f, test_e, test_f_rmse = evaluate(test)
    result = {"model": "MACE small (128x0e, max_ell 3, correlation 3, 2 layers, r 5 Å)", "dataset": args.data,
              "budget_minutes": args.budget_minutes, "wall_minutes": wall_min, "cpu_minutes": cpu_min,
              "threads": args.threads, "epochs": epochs, "steps": steps, "avg_num_neighbors": avg_neighbours,
              "train_configs": len(train), "valid_configs": len(valid), "test_configs": len(test),
              "force_mae_mev_per_a": test_f, "force_rmse_mev_per_a": test_f_rmse,
              "energy_mae_mev_per_atom": test_e, "valid_force_mae": best[0],
              "curve": [{"wall_minutes": w, "cpu_minutes": c, "valid_force_mae": v} for w, c, v in curve]}
    torch.save(model.state_dict(), os.path.join(HERE, f"mace_{args.data}.pt"))
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, args.output)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
