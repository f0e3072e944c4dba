"""Neighbour lists: every search returns one convention.

``edge_index`` [2, E] int64 (row 0 the centre i, row 1 the neighbour j) and ``shifts`` [E, 3]
(the positions' float dtype, integer values): the cell offset of each edge in lattice vectors, so

    r_ij = x_j − x_i + shifts_ij @ cell        (:func:`edge_vectors`).

The zero-shift self pair (i, i, 0) is never an edge; periodic self-images (i, i, S ≠ 0) are.

- :mod:`.lattice`: cell heights (the one helper every cell check uses), image ranges, edge vectors.
- :mod:`.search`: the graph builders' searches over batches: torch-cluster (molecules), vesin
  (periodic cells of any shape), and all images in plain PyTorch (TorchScript, any cell).
- :mod:`.minimum_image`: plain PyTorch, TorchScript-able searches of one structure in an OpenMM
  reduced box (minimum image): what the exported OpenMM module runs without geoff.
"""

from .lattice import cell_heights, edge_vectors, image_range
from .minimum_image import all_ordered_pairs, cell_list_pairs, cutoff_pairs, dense_pairs, minimum_image_shifts
from .search import all_pairs_edges, torch_cluster_edges, vesin_edges

__all__ = [
    "cell_heights", "edge_vectors", "image_range",
    "all_ordered_pairs", "cell_list_pairs", "cutoff_pairs", "dense_pairs", "minimum_image_shifts",
    "all_pairs_edges", "torch_cluster_edges", "vesin_edges",
]
