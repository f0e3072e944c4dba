"""Committees of potentials: the mean prediction and its spread (an uncertainty).

Example: geoff committee build runs/member-1/best.pt runs/member-2/best.pt runs/member-3/best.pt -o committee.pt
Train members from one config with different seeds: geoff train config.yaml --seed K --run-dir runs/member-K
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="one potential file holding several members (same species and cutoff)",
                       description="Write one potential file holding the given members. geoff.load returns it; "
                                   "GeoffCalculator gives the mean energy and forces and energy_std, forces_std, "
                                   "max_force_std.")
    b.add_argument("members", nargs="+", help="member potential files (.pt) or shipped names; at least two")
    b.add_argument("-o", "--output", required=True, help="committee potential file to write")
    b.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run(args) -> int:
    from pathlib import Path

    from ..errors import GeoffInputError
    from ..io import save_potential
    from ..io import build_committee

    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise GeoffInputError(f"{output} exists; give another --output, or --overwrite to replace it.")
    committee = build_committee(args.members)
    metadata = {"committee_members": [str(m) for m in args.members],
                "member_metadata": [dict(getattr(m, "metadata", {}) or {}) for m in committee.members]}
    save_potential(committee, output, metadata=metadata)
    print(f"committee of {committee.num_members} members ({', '.join(args.members)}): species {committee.species}, "
          f"cutoff {committee.cutoff} Å")
    print(f"potential         {output}")
    return 0
