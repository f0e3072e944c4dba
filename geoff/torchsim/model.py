"""GeoffModel: a geoff potential as a TorchSim ``ModelInterface`` (many systems in one batched graph).

TorchSim keeps B systems in one ``SimState``: positions [N, 3] Å, ``row_vector_cell`` [B, 3, 3] Å,
``system_idx`` [N], atomic numbers [N] and one ``pbc`` [3] for all systems. Each call builds one
disjoint geoff graph of all B systems (the same graph :func:`geoff.structures_to_graph` builds)
and runs :meth:`geoff.models.Potential.forward` on it once: energies per system, forces by
autograd and, for periodic states, the stress from the strain derivative — in ASE's sign
convention, σ = (1/V) ∂E/∂ε, which is TorchSim's too.

Neighbour lists (``neighbour_list``):

- ``"geoff"``: geoff's own search (:func:`geoff.graph.add_edges`: torch-cluster's batched
  ``radius_graph`` for molecules, vesin per system for periodic cells);
- ``"torchsim"``: TorchSim's batched ``torchsim_nl`` (the best search TorchSim has installed).

Both give every pair closer than the cutoff, so the numbers agree to rounding. ``"auto"`` takes
what measured faster in benchmarks/torchsim_replicas.py (benchmarks/results/torchsim-replicas.md,
one CPU thread, Python 3.12 without torch-cluster): TorchSim's batched list for open boundaries
(256 ethanol replicas: 3.7 ms per search against 10.8 ms for geoff's per-molecule vesin search,
of ~150 ms per step), geoff's for periodic cells (8 water boxes of 192 atoms).
"""

from typing import Dict, Optional, Union

import torch
from torch import Tensor

from .. import keys
from ..errors import GeoffInputError
from ..graph import add_edges
from ..models import Potential

try:  # torch-sim-atomistic is optional (it needs Python >= 3.12)
    from torch_sim.models.interface import ModelInterface
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError("geoff.torchsim needs TorchSim: pip install 'geoff[torchsim]' (Python >= 3.12).") from _exc

NEIGHBOUR_LISTS = ("auto", "geoff", "torchsim")
#: what "auto" uses for (open boundaries, periodic cells): the faster in benchmarks/results/torchsim-replicas.md
AUTO_NEIGHBOUR_LIST = {False: "torchsim", True: "geoff"}

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class GeoffModel(ModelInterface):
    """A geoff potential for TorchSim's integrators, optimisers and runners.

    Args:
        potential: a geoff ``Potential``, a potential file or a shipped name (e.g. "ethanol-egnn").
        device: torch device (default: cuda when available, else cpu).
        dtype: "float32"/"float64" or a torch dtype (default: the potential's). TorchSim states
            must use the same dtype.
        compute_forces: return forces [N, 3] eV/Å.
        compute_stress: return stress [B, 3, 3] eV/Å³ (periodic states only). None (default):
            for periodic states yes, for open ones no.
        neighbour_list: "auto", "geoff" or "torchsim" (see the module docstring).

    ``forward(state)`` returns ``energy`` [B] eV, ``forces`` [N, 3] eV/Å and ``stress``
    [B, 3, 3] eV/Å³, all detached.
    """

    def __init__(self, potential, device: Optional[Union[str, torch.device]] = None,
                 dtype: Optional[Union[str, torch.dtype]] = None, compute_forces: bool = True,
                 compute_stress: Optional[bool] = None, neighbour_list: str = "auto"):
        super().__init__()
        if not isinstance(potential, Potential):
            from ..io import load_potential

            potential = load_potential(potential)
        if isinstance(dtype, str):
            if dtype not in _DTYPES:
                raise GeoffInputError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.")
            dtype = _DTYPES[dtype]
        if neighbour_list not in NEIGHBOUR_LISTS:
            raise GeoffInputError(f"neighbour_list must be one of {NEIGHBOUR_LISTS}, got {neighbour_list!r}.")
        device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or potential.reference_energies.dtype
        self.potential = potential.to(device=device, dtype=dtype).eval()
        for p in self.potential.parameters():
            p.requires_grad_(False)
        self._device = device
        self._dtype = dtype
        self._compute_forces = bool(compute_forces)
        self._stress_request = compute_stress
        self._compute_stress = bool(compute_stress)
        self._memory_scales_with = "n_atoms_x_density"
        self.neighbour_list = neighbour_list
        self.cutoff = float(self.potential.cutoff)
        self._checked_numbers: Optional[Tensor] = None

    @ModelInterface.compute_stress.setter
    def compute_stress(self, value: Optional[bool]) -> None:
        self._stress_request = value
        self._compute_stress = bool(value)

    @ModelInterface.compute_forces.setter
    def compute_forces(self, value: bool) -> None:
        self._compute_forces = bool(value)

    def graph(self, state) -> Dict[str, Tensor]:
        """The disjoint geoff graph (:mod:`geoff.keys`) of every system in ``state``."""
        positions = state.positions
        if positions.dtype != self._dtype:
            raise GeoffInputError(f"the TorchSim state is {positions.dtype} but the model is {self._dtype}; build the "
                                  f"state with dtype={self._dtype} (or the model with the state's dtype).")
        numbers = state.atomic_numbers
        if self._checked_numbers is None or self._checked_numbers.shape != numbers.shape \
                or not torch.equal(self._checked_numbers, numbers):
            self.potential.check_elements(numbers)
            self._checked_numbers = numbers.clone()
        system_idx = state.system_idx
        num_systems = int(state.row_vector_cell.shape[0])
        pbc = torch.as_tensor(state.pbc, device=positions.device).reshape(-1, 3).expand(num_systems, 3)
        graph = {
            keys.POSITIONS: positions,
            keys.ATOMIC_NUMBERS: numbers.to(torch.long),
            keys.BATCH: system_idx,
            keys.NUM_ATOMS: torch.bincount(system_idx, minlength=num_systems),
            keys.CELL: state.row_vector_cell,
            keys.PBC: pbc.contiguous(),
        }
        method = self.neighbour_list
        if method == "auto":
            method = AUTO_NEIGHBOUR_LIST[bool(pbc.any())]
        if method == "torchsim":
            from torch_sim.neighbors import torchsim_nl

            mapping, _, shifts = torchsim_nl(positions, graph[keys.CELL], pbc[0], self.cutoff, system_idx)
            graph[keys.EDGE_INDEX] = mapping.to(torch.long)
            graph[keys.EDGE_SHIFTS] = shifts.to(positions.dtype)
        else:
            add_edges(graph, self.cutoff, "auto")
        return graph

    def forward(self, state, **kwargs) -> Dict[str, Tensor]:
        graph = self.graph(state)
        periodic = bool(graph[keys.PBC].all())
        want_stress = periodic if self._stress_request is None else bool(self._stress_request)
        if want_stress and not periodic:
            raise GeoffInputError("stress is defined only for states periodic in all three directions; "
                                  "use compute_stress=None (default) or False for molecules.")
        out = self.potential(graph, compute_forces=self._compute_forces, compute_stress=want_stress)
        results = {"energy": out[keys.ENERGY].detach()}
        if self._compute_forces:
            results["forces"] = out[keys.FORCES].detach()
        if want_stress:
            results["stress"] = out[keys.STRESS].detach()
        return results
