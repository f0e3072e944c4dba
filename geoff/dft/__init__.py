"""DFT labels through PySCF: :func:`label_structures` (``geoff label``) and one configuration at a time
(:func:`compute`). Energies in eV, forces in eV/Å."""

from .label import LabelSummary, check_structures, default_failures_path, frame_key, label_structures, read_structures
from .pyscf_runner import DISPERSIONS, DFTResult, DFTSettings, check_settings, compute, parse_method

__all__ = ["LabelSummary", "check_structures", "default_failures_path", "frame_key", "label_structures",
           "read_structures", "DISPERSIONS", "DFTResult", "DFTSettings", "check_settings", "compute", "parse_method"]
