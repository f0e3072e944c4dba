"""Where does geoff's EGNN energy+forces call spend its time?

    .venv/bin/python benchmarks/profile_egnn.py                       # ethanol and water-1536
    .venv/bin/python benchmarks/profile_egnn.py --systems water-1536 --save profile-cpu

Runs torch.profiler over a few calls of the torch path (structure → graph →
energy + forces, random weights, shipped size hidden 64 × 3 layers, r_c 5 Å)
and prints, per system: the split of wall time between graph building
(neighbour list), the forward pass and the backward pass (forces), then the
operators with the largest self CPU time.
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from systems import make_system  # noqa: E402


def profile_system(name: str, steps: int, top: int, hidden: int, layers: int) -> str:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function
    import geoff
    from geoff import keys, structures_to_graph

    torch.manual_seed(0)
    pot = geoff.EGNNPotential(["H", "C", "N", "O"], cutoff=5.0, hidden=hidden, num_layers=layers).eval()
    atoms = make_system(name)

    def call():
        with record_function("1 graph (neighbour list)"):
            graph = structures_to_graph([atoms], pot.cutoff)
        with record_function("2 forward+backward"):
            out = pot(graph, compute_forces=True)
        return out[keys.FORCES]

    for _ in range(2):
        call()
    # plain timings of the three stages, without the profiler's overhead
    t_graph, t_total = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        graph = structures_to_graph([atoms], pot.cutoff)
        t1 = time.perf_counter()
        pot(graph, compute_forces=True)
        t2 = time.perf_counter()
        t_graph.append(t1 - t0)
        t_total.append(t2 - t0)
    t_fwd = []
    for _ in range(steps):
        t0 = time.perf_counter()
        pot(graph, compute_forces=False)
        t_fwd.append(time.perf_counter() - t0)
    g, tot, fwd = (1e3 * float(np.median(x)) for x in (t_graph, t_total, t_fwd))
    lines = [f"== {name}: {len(atoms)} atoms, {int(graph[keys.EDGE_INDEX].shape[1])} edges, "
             f"hidden {hidden} x {layers} layers, {torch.get_num_threads()} thread(s)",
             f"median ms: total {tot:.2f} = graph {g:.2f} ({100 * g / tot:.0f}%) + energy forward {fwd:.2f} "
             f"({100 * fwd / tot:.0f}%) + forces backward ~{tot - g - fwd:.2f} ({100 * (tot - g - fwd) / tot:.0f}%)"]
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        for _ in range(steps):
            call()
    lines.append(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default="ethanol,water-1536")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=18)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--save", metavar="NAME", help="also write benchmarks/results/NAME.txt")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    text = "\n\n".join(profile_system(s, args.steps, args.top, args.hidden, args.layers)
                       for s in args.systems.split(","))
    print(text)
    if args.save:
        from geoff.io import atomic_path

        with atomic_path(os.path.join(HERE, "results", args.save + ".txt")) as tmp:
            tmp.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
