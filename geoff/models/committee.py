"""A committee of potentials: the mean energy and forces, and their spread as an uncertainty.

:class:`CommitteePotential` is one more registered model type ("committee") whose config lists its
members' model types and configs, so a committee is stored in the same potential file as any
model (configs + weights, no code) and ``geoff.load`` returns it. Everything that evaluates a
potential through ``Potential.forward`` or ``atomic_energies_raw`` (the trainer's evaluation,
``geoff evaluate``, :class:`geoff.CompiledPotential`, the OpenMM module and TorchScript export)
sees the committee mean: its per-atom energy is the mean of the members' E_i, so its forces are
the mean of the members' forces. :meth:`CommitteePotential.member_outputs` gives each member's
energy and forces; :class:`geoff.GeoffCalculator` turns them into ``energy_std``, ``forces_std``
and ``max_force_std`` (see :func:`committee_statistics`); :func:`committee_uncertainty` does it for
a list of structures.

Make one from trained members (same species in the same order, same cutoff; e.g. ``geoff train
config.yaml --seed k --run-dir runs/member-k`` for k = 1..4)::

    geoff committee build runs/member-*/best.pt -o committee.pt
    committee = geoff.models.committee.build_committee(["m1.pt", "m2.pt"])   # Python
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from .. import keys
from ..errors import GeoffInputError
from .potential import Potential
from .registry import build_model, register_model

#: Results of a committee that a single potential does not have (see :func:`committee_statistics`).
COMMITTEE_RESULTS = ("energy_std", "forces_std", "max_force_std", "member_energies")


def member_specs(config: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """(model_type, config) of each member listed in a committee config; GeoffInputError if the
    list is malformed (not a non-empty list of {"model_type": str, "config": dict}, or a member that
    is itself a committee)."""
    members = config.get("members") if isinstance(config, dict) else None
    if not isinstance(members, (list, tuple)) or not members:
        raise GeoffInputError(f"a committee config needs 'members': a non-empty list of {{'model_type': ..., "
                              f"'config': {{...}}}}, got {type(members).__name__}.")
    specs = []
    for k, m in enumerate(members):
        if not (isinstance(m, dict) and set(m) == {"model_type", "config"} and isinstance(m["model_type"], str)
                and isinstance(m["config"], dict) and all(isinstance(n, str) for n in m["config"])):
            raise GeoffInputError(f"committee member {k} must be {{'model_type': str, 'config': dict}}, got {m!r:.200}.")
        if m["model_type"] == CommitteePotential.model_type:
            raise GeoffInputError(f"committee member {k} is itself a committee; list its members instead.")
        specs.append((m["model_type"], dict(m["config"])))
    return specs


@register_model
class CommitteePotential(Potential):
    """The mean of N member potentials (same species, same order, same cutoff).

    Energy E = (1/N) Σ_m E_m (eV); forces F = (1/N) Σ_m F_m (eV/Å); stress likewise. The committee's
    own ``reference_energies`` (0) and ``energy_scale`` (1) leave the members' mean unchanged.

    Args:
        members: [{"model_type": "egnn", "config": {...}}, ...], each member's constructor config
            (what ``potential.config()`` returns). Weights come from the state dict
            (``members.<k>.<name>``). Use :meth:`from_members` to wrap trained potentials.
    """

    model_type = "committee"
    member_specs = staticmethod(member_specs)

    def __init__(self, members: List[Dict[str, Any]]):
        built = [build_model(t, c) for t, c in member_specs({"members": members})]
        species, cutoff = list(built[0].species), float(built[0].cutoff)
        for k, m in enumerate(built[1:], start=1):
            if list(m.species) != species:
                raise GeoffInputError(f"committee members must share their species in the same order: member 0 has "
                                      f"{species}, member {k} has {list(m.species)}. Train every member from one "
                                      "config (model.species) so the lists match.")
            if float(m.cutoff) != cutoff:
                raise GeoffInputError(f"committee members must share the cutoff: member 0 has {cutoff} Å, member {k} "
                                      f"has {float(m.cutoff)} Å. Train every member with the same model.cutoff.")
        super().__init__(species, cutoff)
        self.members = nn.ModuleList(built)
        self.reflection_invariant = all(m.reflection_invariant for m in built)
        self.num_members: int = len(built)

    @classmethod
    def from_members(cls, potentials: Sequence[Potential]) -> "CommitteePotential":
        """A committee holding copies of ``potentials``' weights (cast to the widest float dtype among
        them); a member that is a committee contributes its members."""
        flat: List[Potential] = []
        for p in potentials:
            flat.extend(p.members if isinstance(p, CommitteePotential) else [p])
        if len(flat) < 1:
            raise GeoffInputError("a committee needs at least one member potential.")
        dtype = torch.float64 if any(p.reference_energies.dtype == torch.float64 for p in flat) else torch.float32
        committee = cls([{"model_type": p.model_type, "config": p.config()} for p in flat]).to(dtype)
        for mine, theirs in zip(committee.members, flat):
            mine.load_state_dict({k: v.detach().to("cpu") for k, v in theirs.state_dict().items()})
            mine.check_species = theirs.check_species
            mine.metadata = dict(getattr(theirs, "metadata", {}) or {})
        return committee.eval()

    @torch.jit.unused
    def config(self) -> Dict[str, object]:
        return {"members": [{"model_type": m.model_type, "config": m.config()} for m in self.members]}

    @torch.jit.unused
    def hyperparameters(self) -> Dict[str, object]:
        return {}

    @torch.jit.unused
    def message_passing_layers(self) -> int:
        return max(m.message_passing_layers() for m in self.members)

    def atomic_energies_raw(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                            edge_layers: Optional[Tensor] = None) -> Tensor:
        """The members' mean per-atom energy (1/N) Σ_m (s_m ε_m,i + E_ref,m[Z_i]), eV [N_atoms]."""
        total = torch.zeros(species.shape[0], dtype=edge_vectors.dtype, device=edge_vectors.device)
        for member in self.members:
            total = total + member.energy_scale * member.atomic_energies_raw(species, edge_index, edge_vectors, edge_layers) \
                + member.reference_energies[species]
        return total / float(self.num_members)

    @torch.jit.unused
    def member_outputs(self, graph: Dict[str, Tensor], compute_stress: bool = False,
                       models: Sequence[nn.Module] = ()) -> Dict[str, Tensor]:
        """Each member's results on ``graph`` (one structure or a batch), detached, stacked on dim 0:
        energy [M, B] (eV), atomic_energies [M, N], forces [M, N, 3] (eV/Å), and with
        ``compute_stress`` stress [M, B, 3, 3] (eV/Å³). ``models``: callables to use instead of the
        members (e.g. their compiled versions), in member order."""
        runs = list(models) if models else list(self.members)
        outs = [m(graph, compute_forces=True, compute_stress=compute_stress) for m in runs]
        stacked = {name: torch.stack([o[name].detach() for o in outs])
                   for name in (keys.ENERGY, keys.ATOMIC_ENERGIES, keys.FORCES)}
        if compute_stress:
            stacked[keys.STRESS] = torch.stack([o[keys.STRESS].detach() for o in outs])
        return stacked


def committee_statistics(energies: np.ndarray, forces: np.ndarray) -> Dict[str, Any]:
    """Mean and spread of one structure's member predictions, in float64.

    Args:
        energies: [M] member energies, eV. forces: [M, N, 3] member forces, eV/Å.

    Returns:
        energy (eV) and forces [N, 3] (eV/Å): the member means;
        energy_std (eV): the standard deviation of the members' energies (population, ddof = 0);
        forces_std [N] (eV/Å): per atom, the norm of the per-component standard deviations,
        sqrt(Σ_k Var_m F_m,ik) = the root-mean-square distance of the members' force vectors from their
        mean: invariant under rotations (the per-component standard deviations alone are not);
        max_force_std (eV/Å): the largest forces_std;
        member_energies [M] (eV).
    """
    e = np.asarray(energies, dtype=np.float64).reshape(-1)
    f = np.asarray(forces, dtype=np.float64)
    forces_std = np.sqrt(np.sum(f.var(axis=0), axis=-1))
    return {"energy": float(e.mean()), "forces": f.mean(axis=0), "energy_std": float(e.std()),
            "forces_std": forces_std, "max_force_std": float(forces_std.max()) if forces_std.size else 0.0,
            "member_energies": e}
