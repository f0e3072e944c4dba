"""geoff as a metatomic model: one file that metatomic engines load without geoff.

    import geoff.metatomic
    geoff.metatomic.export("ethanol-egnn", "ethanol-metatomic.pt")

    from metatomic_ase import MetatomicCalculator          # in any process, geoff not needed
    atoms.calc = MetatomicCalculator("ethanol-metatomic.pt")

Needs ``metatomic-torch`` (and ``metatensor-torch``); ``pip install geoff[metatomic]``.
"""

from .export import build_atomistic_model, export, interaction_range, message_passing_layers, read_export_info

__all__ = ["build_atomistic_model", "export", "interaction_range", "message_passing_layers", "read_export_info"]
