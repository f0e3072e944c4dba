"""The ``geoff`` command: one sub-command per module in this package."""

import argparse
import importlib
import sys
from typing import List, Optional

from ..errors import GeoffError

#: sub-command name → module in geoff.cli that defines ``add_arguments(parser)`` and ``run(args)``.
COMMANDS = {
    "md": "geoff.cli.md",
    "export": "geoff.cli.export",
    "train": "geoff.cli.train",
    "finetune": "geoff.cli.finetune",
    "evaluate": "geoff.cli.evaluate",
    "label": "geoff.cli.label",
    "committee": "geoff.cli.committee",
    "learn": "geoff.cli.learn",
    "lammps": "geoff.cli.lammps",
}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="geoff", description="geoff: a learned force field for molecular dynamics.")
    parser.add_argument("--version", action="version", version=f"geoff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=mod.__doc__.strip().splitlines()[0], description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except GeoffError as exc:
        print(f"geoff {args.command}: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print(f"geoff {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
