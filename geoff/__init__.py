"""geoff: a learned force field for molecular dynamics.

    import geoff
    pot = geoff.EGNNPotential(species=["H", "C", "O"], cutoff=5.0)
    pot = geoff.load("ethanol-egnn")            # or a path to a .pt file
    atoms.calc = geoff.GeoffCalculator(pot)     # ASE

Units everywhere inside geoff: Å, eV, eV/Å, eV/Å³ (ASE's).
"""

from .version import __version__
from .errors import GeoffError, GeoffFileError, GeoffInputError  # noqa: E402
from .graph import arrays_to_graph, complete_graph, structures_to_graph  # noqa: E402
from .io import load_potential as load, save_potential as save, shipped_potentials  # noqa: E402
from .models import MODEL_TYPES, CompiledPotential, EGNNPotential, Potential  # noqa: E402
from .models import CommitteePotential, SE3TransformerPotential  # noqa: E402


def __getattr__(name):
    # The ASE adapter is imported on first use so that `import geoff` stays light.
    if name == "GeoffCalculator":
        from .ase import GeoffCalculator

        return GeoffCalculator
    raise AttributeError(f"module 'geoff' has no attribute {name!r}")


__all__ = [
    "__version__", "GeoffError", "GeoffFileError", "GeoffInputError", "arrays_to_graph", "complete_graph", "structures_to_graph",
    "load", "save", "shipped_potentials", "MODEL_TYPES", "EGNNPotential", "Potential", "GeoffCalculator",
    "SE3TransformerPotential", "CompiledPotential", "CommitteePotential",
]
