"""Names of the tensors in a geoff graph (a ``Dict[str, Tensor]``).

A batch of B structures with N atoms in total and E directed edges is one
disjoint graph. Shapes are given next to each key; lengths are in Å, energies
in eV, forces in eV/Å and stress in eV/Å³ (ASE's units, see ``geoff.units``).
"""

# --- structure (inputs) ---
POSITIONS = "positions"          # [N, 3] float, Å
ATOMIC_NUMBERS = "atomic_numbers"  # [N] int64
BATCH = "batch"                  # [N] int64, structure index of each atom
NUM_ATOMS = "num_atoms"          # [B] int64, atoms per structure
CELL = "cell"                    # [B, 3, 3] float, Å, rows are lattice vectors
PBC = "pbc"                      # [B, 3] bool

# --- graph (built by geoff.graph) ---
EDGE_INDEX = "edge_index"        # [2, E] int64: row 0 = centre i, row 1 = neighbour j
EDGE_SHIFTS = "edge_shifts"      # [E, 3] float, integer cell shifts S of neighbour j
# edge vector r_ij = pos[j] - pos[i] + S_ij @ cell[batch[i]]

# --- outputs ---
ATOMIC_ENERGIES = "atomic_energies"  # [N] float, eV
ENERGY = "energy"                # [B] float, eV
FORCES = "forces"                # [N, 3] float, eV/Å
STRESS = "stress"                # [B, 3, 3] float, eV/Å³ (ASE sign: (1/V) dE/dε)
VIRIAL = "virial"                # [B, 3, 3] float, eV (-dE/dε)
