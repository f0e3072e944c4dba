"""Packaging: every package folder is installed, and shipped potentials resolve by name."""

import tomllib
from pathlib import Path

import geoff

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "geoff").rglob("__init__.py")}
    found.add("geoff.potentials")
    assert found == listed


def test_shipped_potentials_load_by_name():
    shipped = geoff.shipped_potentials()
    for name, path in shipped.items():
        assert path.is_file()
        pot = geoff.load(name)
        assert pot.species and pot.cutoff > 0
