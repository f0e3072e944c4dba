"""Import layers: each part of geoff imports only the parts below it.

From the bottom: errors, units, keys, version → nn, graph, threads → models → io → md
(engine-independent MD) → the engine adapters ase, openmm, lammps, metatomic and torchsim (none
imports another) → training → learn (the active-learning loop) → cli; dft (labels) imports no model,
MD or training. Imports inside functions count as well.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "geoff"

#: for each part, the parts of geoff it must not import
FORBIDDEN = {
    "learn": {"cli"},
    "dft": {"md", "ase", "openmm", "lammps", "metatomic", "torchsim", "training", "learn", "cli"},
    "md": {"ase", "openmm", "lammps", "metatomic", "torchsim", "training", "cli"},
    "ase": {"openmm", "lammps", "metatomic", "torchsim", "training", "cli"},
    "openmm": {"ase", "lammps", "metatomic", "torchsim", "training", "cli"},
    "lammps": {"ase", "openmm", "metatomic", "torchsim", "md", "training", "cli"},
    "metatomic": {"ase", "openmm", "lammps", "torchsim", "md", "training", "cli"},
    "torchsim": {"ase", "openmm", "lammps", "metatomic", "md", "training", "cli"},
    "training": {"md", "ase", "openmm", "lammps", "metatomic", "torchsim", "cli"},
    "models": {"io", "md", "ase", "openmm", "lammps", "metatomic", "torchsim", "training", "cli"},
    "graph": {"models", "io", "md", "ase", "openmm", "lammps", "metatomic", "torchsim", "training", "cli"},
    "nn": {"graph", "models", "io", "md", "ase", "openmm", "lammps", "metatomic", "torchsim", "training", "cli"},
    "threads": {"nn", "graph", "models", "io", "md", "ase", "openmm", "lammps", "metatomic", "torchsim", "training",
                "cli"},
}


def _imported_parts(path: Path):
    """(line, part of geoff) for every import of geoff in ``path``, relative ones resolved."""
    module = path.relative_to(ROOT.parent).with_suffix("").parts
    package = module[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - (node.level - 1)])
                target = base + (node.module.split(".") if node.module else [])
                names = [target] if node.module else [target + [a.name] for a in node.names]
            else:
                names = [(node.module or "").split(".")]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for parts in names:
            if parts[0] == "geoff" and len(parts) > 1:
                yield node.lineno, parts[1]


def test_no_part_imports_a_part_above_it():
    bad = []
    for part, forbidden in FORBIDDEN.items():
        files = [ROOT / f"{part}.py"] if (ROOT / f"{part}.py").exists() else sorted((ROOT / part).rglob("*.py"))
        assert files, f"geoff/{part} not found"
        for path in files:
            for line, target in _imported_parts(path):
                if target in forbidden:
                    bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports geoff.{target}")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_check_sees_relative_imports():
    # the parser must resolve "from ..openmm import x" inside geoff/md to geoff.openmm
    probe = ROOT / "md" / "loop.py"
    parts = {target for _, target in _imported_parts(probe)}
    assert {"errors", "io", "units", "md"} <= parts
