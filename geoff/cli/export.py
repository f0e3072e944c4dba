"""Export a geoff potential for OpenMM's TorchForce (openmm-torch), for LAMMPS or as a metatomic model.

Example: geoff export ethanol-egnn ethanol.pt --structure ethanol.pdb
         geoff export ethanol-egnn complex-ml.pt --structure complex.pdb --ml-atoms 0-26
         geoff export ethanol-egnn ethanol-lammps.pt --format lammps     (pair_style geoff; no structure)
         geoff export --format metatomic ethanol-egnn ethanol-metatomic.pt

--format openmm (default): a file for one system that takes positions in nm (and box vectors when
periodic) and returns the energy in kJ/mol and the forces in kJ/mol/nm: load it with
openmmtorch.TorchForce(path) (and setOutputsForces(True) if exported with --outputs-forces) and
setUsesPeriodicBoundaryConditions(True) for periodic systems.

--format lammps: a TorchScript module for pair_style geoff (any system; LAMMPS passes the atoms).

--format metatomic: a metatomic AtomisticModel for any system of the potential's elements (Å, eV;
no --structure): metatomic-ase, metatomic-torchsim, i-PI and metatomic-enabled LAMMPS load it
without geoff.
"""

import argparse

from ..units import NM_TO_ANGSTROM


def parse_indices(text: str):
    """"0-8,12,15-17" → [0, ..., 8, 12, 15, 16, 17]."""
    from ..errors import GeoffInputError

    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        except ValueError as exc:
            raise GeoffInputError(f"--ml-atoms: cannot read {part!r}; use e.g. 0-8,12,15-17.") from exc
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("potential", help="potential file (.pt) or shipped name, e.g. ethanol-egnn")
    p.add_argument("output", help="TorchScript file to write, e.g. model.pt")
    p.add_argument("--format", choices=["openmm", "lammps", "metatomic"], default="openmm",
                   help="openmm: a TorchForce file for one system (needs --structure); lammps: for pair_style geoff "
                        "(any system: LAMMPS passes the atoms); metatomic: a metatomic AtomisticModel for any "
                        "system (Å, eV)")
    p.add_argument("--structure", default=None,
                   help="openmm format: the system, a PDB file (OpenMM topology, box from CRYST1), any file ase.io "
                        "reads, or a molecule name such as ethanol")
    p.add_argument("--ml-atoms", default=None, help="indices of the atoms geoff models (ML/MM), e.g. 0-26; default all")
    p.add_argument("--outputs-forces", action="store_true",
                   help="forward returns (energy, forces); default returns only the energy (openmm-torch "
                        "differentiates it), measured the faster")
    p.add_argument("--neighbour-list", choices=["auto", "dense", "pairs", "cells"], default="auto")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None)


def _refuse_openmm_options(args, why: str) -> None:
    """A clear error when options of the OpenMM format are given to another format."""
    from ..errors import GeoffInputError

    given = [flag for flag, value in (("--structure", args.structure), ("--ml-atoms", args.ml_atoms),
                                      ("--outputs-forces", args.outputs_forces),
                                      ("--neighbour-list", args.neighbour_list != "auto")) if value]
    if given:
        raise GeoffInputError(f"{', '.join(given)} apply to --format openmm only: {why}")


def run_metatomic(args) -> int:
    from ..errors import GeoffInputError

    _refuse_openmm_options(args, "a metatomic model serves any system, and the engine supplies the neighbour "
                                 "list. Leave them out.")
    try:
        from ..metatomic import export, read_export_info
    except ImportError as exc:
        raise GeoffInputError(f"--format metatomic needs metatomic-torch ({exc}); install it with "
                              "pip install 'geoff[metatomic]'.") from exc
    path = export(args.potential, args.output, dtype=args.dtype)
    info = read_export_info(path)
    nl = info["neighbor_lists"][0]
    print(f"wrote              {path}")
    print(f"atomic types       {info['atomic_types']}")
    print(f"neighbour list     full, strict, cutoff {nl['cutoff']} Å (the engine computes it)")
    print(f"interaction range  {info['interaction_range']} Å (cutoff x message-passing layers)")
    print(f"units              positions Å -> energy {info['energy_unit']}, {info['dtype']}")
    print(f"extensions needed  {len(info['extensions'])}")
    return 0


def run(args) -> int:
    if args.format == "lammps":
        return _run_lammps(args)
    if args.format == "metatomic":
        return run_metatomic(args)
    from pathlib import Path

    from ..errors import GeoffInputError
    from ..openmm import export, read_export_info

    if args.structure is None:
        raise GeoffInputError("--structure is required for --format openmm (a PDB file, a structure file or a "
                              "molecule name); --format lammps and --format metatomic need none.")

    ml_atoms = parse_indices(args.ml_atoms) if args.ml_atoms else None
    structure = Path(args.structure)
    if structure.suffix.lower() == ".pdb" and structure.is_file():
        from openmm import app

        pdb = app.PDBFile(str(structure))
        path = export(args.potential, args.output, topology=pdb.topology, ml_atoms=ml_atoms, positions=pdb.positions,
                      outputs_forces=args.outputs_forces, neighbour_list=args.neighbour_list, dtype=args.dtype)
    else:
        from ..md.structure import load_structure

        atoms = load_structure(args.structure)
        periodic = bool(atoms.pbc.any())
        path = export(args.potential, args.output, atomic_numbers=atoms.numbers, ml_atoms=ml_atoms,
                      periodic=periodic, box_vectors=atoms.cell[:] / NM_TO_ANGSTROM if periodic else None,
                      positions=atoms.positions / NM_TO_ANGSTROM,
                      outputs_forces=args.outputs_forces, neighbour_list=args.neighbour_list, dtype=args.dtype)
    info = read_export_info(path)
    print(f"wrote            {path}")
    print(f"particles        {info['num_particles']} ({'all' if info['ml_atoms'] is None else len(info['ml_atoms'])} by geoff)")
    print(f"periodic         {info['periodic']}  (setUsesPeriodicBoundaryConditions({info['periodic']}))")
    print(f"outputs forces   {info['outputs_forces']}  (setOutputsForces({info['outputs_forces']}))")
    print(f"neighbour list   {info['neighbour_list']}, cutoff {info['cutoff_angstrom']} Å, {info['dtype']}")
    print("units            positions nm -> energy kJ/mol, forces kJ/mol/nm")
    return 0


def _run_lammps(args) -> int:
    from ..lammps import export, read_lammps_export_info

    _refuse_openmm_options(args, "LAMMPS passes the atoms and the neighbour list itself.")
    path = export(args.potential, args.output, dtype=args.dtype)
    info = read_lammps_export_info(path)
    elements = " ".join(info["elements"])
    print(f"wrote            {path}")
    print(f"elements         {elements}   (pair_coeff * * maps each atom type to one of these)")
    print(f"cutoff           {info['cutoff_angstrom']} Å, {info['layers']} message-passing layers: ghost atoms out "
          f"to {info['receptive_field_angstrom']} Å + skin (set by the pair style)")
    print(f"dtype            {info['dtype']}")
    print(f"in a deck        units metal / pair_style geoff {path} / pair_coeff * * {elements}")
    return 0
