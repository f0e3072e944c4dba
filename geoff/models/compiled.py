"""A potential's energy and forces compiled into one kernel graph (torch.compile, inductor).

Eager PyTorch spends most of a small molecule's energy + forces call in
per-operator overhead (a few hundred small ATen ops for the EGNN), and in
memory traffic of unfused elementwise chains (SiLU, its backward, products)
for large systems. :class:`CompiledPotential` traces *energy and its gradient
together* with ``torch.func.grad_and_value`` and compiles the whole thing once
with inductor: weights frozen into the graph (``freezing``), the wrapper in C++
(``cpp_wrapper``), static shapes, and on the CPU biases added in the elementwise
kernels rather than by ``addmm`` (:class:`_BiasIntoPointwise`). What each choice gains is in
benchmarks/README.md ("The compiled path").

Shapes are static, so edges are padded to a capacity that grows in steps of
5 % (one compilation per capacity and atom count, cached by inductor on disk
between runs; in MD the edge count between Verlet rebuilds moves by < 1 %, so a
capacity is rarely outgrown, and it never shrinks). Coarser steps pad more edges,
whose work can cost all the gain. Padding edges join atom 0 to itself
with an offset of 2 r_c: their envelope is exactly 0, so they add exactly
nothing to energies or forces (the contract every geoff model keeps, tested).

Small open-boundary structures can skip the neighbour list altogether: pass
the complete graph (:func:`geoff.graph.complete_graph`, every ordered pair;
its shape depends only on N, so it is never padded); edges beyond r_c again
contribute nothing.

What stays eager (the wrapped potential is called instead): stress, batches of
several structures, ``create_graph`` (training). The weights are a frozen copy
taken at construction: later changes to the original potential are not seen.
"""

import copy
import math
from typing import Dict, Tuple

import torch
from torch import Tensor, nn
from torch._inductor.custom_graph_pass import CustomGraphPass

from .. import keys
from .potential import Potential



class _BiasIntoPointwise(CustomGraphPass):
    """Inductor post-grad pass: addmm(b, x, W) → mm(x, W) + b on CPU tensors.

    On the CPU inductor lowers a linear layer to ``addmm``, which first copies the
    broadcast bias into the [E, F] output and then accumulates the product into
    it: an extra write and read of every per-edge activation. As ``mm`` plus an
    add, the add fuses into the elementwise kernel that follows (SiLU, …).
    """

    def __call__(self, graph: torch.fx.Graph) -> None:
        aten = torch.ops.aten
        for node in list(graph.find_nodes(op="call_function", target=aten.addmm.default)):
            if node.kwargs or len(node.args) != 3:
                continue
            bias, x, w = node.args
            val = bias.meta.get("val") if isinstance(bias, torch.fx.Node) else None
            if val is None or val.dim() != 1 or val.device.type != "cpu":
                continue
            with graph.inserting_before(node):
                product = graph.call_function(aten.mm.default, (x, w))
                product.meta.update(node.meta)
                total = graph.call_function(aten.add.Tensor, (product, bias))
                total.meta.update(node.meta)
            node.replace_all_uses_with(total)
            graph.erase_node(node)

    def uuid(self) -> str:
        return "geoff-bias-into-pointwise-1"


#: Inductor options of the compiled path (each kept for what it gained: benchmarks/README.md).
INDUCTOR_OPTIONS = {"freezing": True, "cpp_wrapper": True, "post_grad_custom_post_pass": _BiasIntoPointwise()}


def edge_capacity(num_edges: int, growth: float = 1.05, minimum: int = 64) -> int:
    """Smallest capacity ≥ ``num_edges`` on the ladder c₀ = minimum, c_{k+1} = ⌈growth · c_k⌉."""
    capacity = minimum
    while capacity < num_edges:
        capacity = int(math.ceil(growth * capacity))
    return capacity


class CompiledPotential(nn.Module):
    """Energy, atomic energies and forces of ``potential`` through one compiled graph.

    Drop-in for ``Potential.forward`` on single structures (same graph dict in,
    same keys out); anything the compiled path does not cover is passed to the
    eager potential (see the module docstring).

    Args:
        potential: a geoff :class:`Potential` (copied, set to eval, weights frozen).
        mode: torch.compile mode (None = inductor's default; "reduce-overhead"
            adds CUDA graphs on a GPU).
    """

    def __init__(self, potential: Potential, mode=None):
        super().__init__()
        frozen = copy.deepcopy(potential).eval()
        for p in frozen.parameters():
            p.requires_grad_(False)
        self.potential = frozen
        self.cutoff = frozen.cutoff
        self.species = frozen.species
        self.reflection_invariant = frozen.reflection_invariant
        self.calls_compiled = 0
        self.calls_eager = 0
        self._capacity = 0
        self._edge_cache = None
        grad_and_value = torch.func.grad_and_value(self._energy, has_aux=True)

        def energy_forces(positions, species, edge_index, offsets):
            grad, (energy, atomic) = grad_and_value(positions, species, edge_index, offsets)
            return energy, atomic, -grad

        self._compiled = torch.compile(energy_forces, fullgraph=True, dynamic=False, mode=mode,
                                       options=None if mode else dict(INDUCTOR_OPTIONS))

    # what callers of a Potential read from it (the weights are fixed at the first compiled call)
    @property
    def reference_energies(self) -> Tensor:
        return self.potential.reference_energies

    def check_elements(self, atomic_numbers) -> None:
        self.potential.check_elements(atomic_numbers)

    def config(self):
        return self.potential.config()

    def _energy(self, positions: Tensor, species: Tensor, edge_index: Tensor,
                offsets: Tensor) -> Tuple[Tensor, Tensor]:
        vectors = positions.index_select(0, edge_index[1]) - positions.index_select(0, edge_index[0]) + offsets
        atomic = self.potential.atomic_energies(species, edge_index, vectors)
        energy = atomic.sum()
        return energy, atomic.detach()

    def energy_forces(self, positions: Tensor, atomic_numbers: Tensor, edge_index: Tensor,
                      offsets: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Energy [] (eV), atomic energies [N] (eV) and forces [N, 3] (eV/Å) of one structure.

        Args:
            positions: [N, 3] Å. atomic_numbers: [N] int64.
            edge_index: [2, E] int64 (row 0 = i, row 1 = j).
            offsets: [E, 3] Å, periodic image offsets S_ij @ cell (zeros without PBC);
                r_ij = x_j − x_i + offsets.
        """
        edge_index, offsets = self._padded(edge_index, offsets)
        return self._evaluate(positions, atomic_numbers, edge_index, offsets)

    def _evaluate(self, positions: Tensor, atomic_numbers: Tensor, edge_index: Tensor,
                  offsets: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The compiled call on already padded edges (unknown elements raise first)."""
        species = self.potential.species_of(atomic_numbers)
        if bool((species < 0).any()):
            self.potential.check_elements(atomic_numbers)
        self.calls_compiled += 1
        return self._compiled(positions.detach(), species, edge_index, offsets)

    def _padded(self, edge_index: Tensor, offsets: Tensor, num_atoms: int = -1,
                periodic: bool = True) -> Tuple[Tensor, Tensor]:
        num_edges = int(edge_index.shape[1])
        if not periodic and num_edges == num_atoms * (num_atoms - 1):
            return edge_index, offsets  # a complete graph: its shape never changes, so no padding
        if num_edges > self._capacity:
            self._capacity = edge_capacity(num_edges)
        pad = self._capacity - num_edges
        if pad == 0:
            return edge_index, offsets
        far = offsets.new_zeros((pad, 3))
        far[:, 0] = 2.0 * self.cutoff
        return (torch.cat([edge_index, edge_index.new_zeros((2, pad))], dim=1), torch.cat([offsets, far], dim=0))

    def forward(self, graph: Dict[str, Tensor], compute_forces: bool = True, compute_stress: bool = False,
                create_graph: bool = False) -> Dict[str, Tensor]:
        """Same contract as :meth:`Potential.forward`."""
        if compute_stress or create_graph or int(graph[keys.NUM_ATOMS].shape[0]) != 1:
            self.calls_eager += 1
            return self.potential(graph, compute_forces=compute_forces, compute_stress=compute_stress,
                                  create_graph=create_graph)
        positions = graph[keys.POSITIONS]
        # Between neighbour-list rebuilds (Verlet list, complete graph) the edge tensors are the same
        # objects: reuse their padded copies instead of concatenating every step.
        edges = (graph[keys.EDGE_INDEX], graph[keys.EDGE_SHIFTS], graph[keys.CELL], graph[keys.PBC])
        cached = self._edge_cache
        if cached is None or any(a is not b for a, b in zip(cached[0], edges)):
            shifts = edges[1].to(positions.dtype)
            periodic = bool(edges[3].any())
            offsets = shifts @ edges[2][0] if periodic else torch.zeros_like(shifts)
            cached = self._edge_cache = (edges, self._padded(edges[0], offsets, int(positions.shape[0]), periodic))
        energy, atomic, forces = self._evaluate(positions, graph[keys.ATOMIC_NUMBERS], *cached[1])
        out = {keys.ENERGY: energy.reshape(1), keys.ATOMIC_ENERGIES: atomic}
        if compute_forces:
            out[keys.FORCES] = forces
        return out
