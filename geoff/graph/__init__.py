"""Structures → geometric graphs: batching and neighbour lists."""

from .build import (NEIGHBOUR_METHODS, add_edges, arrays_to_graph, assemble_graph, complete_graph, local_positions,
                    structures_to_graph, validate_structure)
from .checks import check_atoms, check_distances, validate_arrays
from .neighbours import all_pairs_edges, torch_cluster_edges, vesin_edges
from .verlet import VerletNeighbourList

__all__ = [
    "NEIGHBOUR_METHODS", "add_edges", "arrays_to_graph", "assemble_graph", "complete_graph", "structures_to_graph", "validate_structure",
    "check_atoms", "check_distances", "validate_arrays", "local_positions",
    "all_pairs_edges", "torch_cluster_edges", "vesin_edges", "VerletNeighbourList",
]
