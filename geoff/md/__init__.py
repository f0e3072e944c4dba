"""Molecular dynamics, engine-independent: what every MD driver (:mod:`geoff.ase.md`,
:mod:`geoff.openmm.md`) shares.

- :mod:`~geoff.md.structure`: the starting structure from a file or a molecule name;
- :mod:`~geoff.md.health`: the input and parameter checks, and the health check of each logged frame;
- :mod:`~geoff.md.loop`: the output folder, the chunked loop (Ctrl-C, failures, the failing frame);
- :mod:`~geoff.md.log`: the energy log, drift, speed and plot of a run (:class:`~geoff.md.log.MDResult`);
- :mod:`~geoff.md.compiling`: whether a run takes the compiled or the eager path.

The engines add only what is theirs: building the dynamics or simulation and stepping it.
Nothing here imports an engine adapter (:mod:`geoff.ase`, :mod:`geoff.openmm`) or the command line.
"""

from .health import HealthLimits, HealthMonitor, MDFailure, MDInterrupted, Snapshot
from .log import MDResult
from .structure import load_structure

__all__ = ["HealthLimits", "HealthMonitor", "MDFailure", "MDInterrupted", "MDResult", "Snapshot", "load_structure"]
