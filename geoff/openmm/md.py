"""Molecular dynamics through OpenMM with a geoff potential (``geoff md --engine openmm``).

The same run as :func:`geoff.ase.md.run_md`, in OpenMM: a System whose only
force is geoff's (TorchForce or PythonForce), VerletIntegrator for NVE or
LangevinMiddleIntegrator for NVT, a DCD or PDB trajectory, an energy log with
the same columns and units as the ASE engine (eV, K, ps), drift and steps/s.
"""

from pathlib import Path

import numpy as np

from ..errors import GeoffInputError
from ..io import atomic_path
from ..mdlog import run_in_chunks, summarise_run
from ..units import EV_TO_KJ_PER_MOL


def topology_from_atoms(atoms):
    """An ``openmm.app.Topology`` (one residue, one atom per ASE atom) with the cell when periodic."""
    import openmm
    from openmm import app, unit

    top = app.Topology()
    chain = top.addChain()
    res = top.addResidue("MOL", chain)
    for k, z in enumerate(atoms.numbers):
        element = app.Element.getByAtomicNumber(int(z))
        top.addAtom(f"{element.symbol}{k}", element, res)
    if atoms.pbc.any():
        if not atoms.pbc.all():
            raise GeoffInputError("OpenMM needs a cell periodic in all three directions, or none.")
        top.setPeriodicBoxVectors([openmm.Vec3(*v) for v in atoms.cell[:] / 10.0] * unit.nanometer)
    return top


def build_simulation_system(atoms, potential, backend: str = "auto", **force_options):
    """(System, Topology) for ``atoms`` with masses from ASE and the geoff force (periodic if the cell is)."""
    import openmm

    topology = topology_from_atoms(atoms)
    system = openmm.System()
    for m in atoms.get_masses():
        system.addParticle(float(m))
    if atoms.pbc.any():
        system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    from .forces import add_geoff_force

    add_geoff_force(system, potential, topology=topology, backend=backend, **force_options)
    return system, topology


def run_openmm_md(atoms, potential, steps: int, timestep_fs: float = 0.5, temperature_k: float = 300.0,
                  ensemble: str = "nve", friction_per_fs: float = 0.01, output_dir="md-run", log_every: int = 10,
                  seed: int = 0, progress: bool = True, plot: bool = True, platform: str = "CPU",
                  backend: str = "auto", trajectory_format: str = "dcd", **force_options):
    """Run OpenMM MD; writes ``trajectory.dcd|pdb``, ``energies.csv`` and ``energies.png`` into ``output_dir``.

    Returns a :class:`geoff.mdlog.MDResult` (drift in meV/atom/ps from a line fit of the total energy).
    ``platform``: "Reference", "CPU", "CUDA", "OpenCL". ``force_options`` go to
    :func:`geoff.openmm.create_force` (outputs_forces, neighbour_list, dtype, device, cuda_graphs, compile).
    """
    import openmm
    from openmm import app, unit

    if ensemble not in ("nve", "nvt"):
        raise GeoffInputError(f"ensemble must be 'nve' or 'nvt', got {ensemble!r}.")
    if trajectory_format not in ("dcd", "pdb"):
        raise GeoffInputError(f"trajectory_format must be 'dcd' or 'pdb', got {trajectory_format!r}.")
    try:
        plat = openmm.Platform.getPlatformByName(platform)
    except Exception as exc:
        names = [openmm.Platform.getPlatform(k).getName() for k in range(openmm.Platform.getNumPlatforms())]
        raise GeoffInputError(f"OpenMM platform {platform!r} is not available here; available: {names}.") from exc

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    system, topology = build_simulation_system(atoms, potential, backend=backend, **force_options)
    n = len(atoms)
    dof = 3 * n - 3
    system.addForce(openmm.CMMotionRemover())
    dt = timestep_fs * unit.femtosecond
    if ensemble == "nve":
        integrator = openmm.VerletIntegrator(dt)
    else:
        integrator = openmm.LangevinMiddleIntegrator(temperature_k * unit.kelvin, friction_per_fs * 1000.0 / unit.picosecond, dt)
        integrator.setRandomNumberSeed(int(seed) + 1)
    context = openmm.Context(system, integrator, plat)
    context.setPositions(atoms.positions / 10.0)
    context.setVelocitiesToTemperature(temperature_k * unit.kelvin, int(seed) + 1)
    # remove the centre-of-mass velocity now, not at the CMMotionRemover's first step (that
    # would show as a jump of the kinetic energy, and a false "drift" of the total energy)
    masses = np.asarray(atoms.get_masses())[:, None]
    v = np.asarray(context.getState(getVelocities=True).getVelocities(asNumpy=True).value_in_unit(
        unit.nanometer / unit.picosecond))
    context.setVelocities(v - (masses * v).sum(0) / masses.sum())

    rows = []
    kb = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)

    def record(step, state):
        epot = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
        ekin_kj = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        ekin = ekin_kj / EV_TO_KJ_PER_MOL
        rows.append((step * timestep_fs / 1000.0, epot, ekin, epot + ekin, 2.0 * ekin_kj / (dof * kb)))

    traj_path = out / f"trajectory.{trajectory_format}"
    log_path, png_path = out / "energies.csv", out / "energies.png"
    with atomic_path(traj_path) as tmp_traj:
        with open(tmp_traj, "w" if trajectory_format == "pdb" else "wb") as fh:
            writer = app.DCDFile(fh, topology, dt, 0, log_every) if trajectory_format == "dcd" else None

            def write_frame(state, index):
                pos = state.getPositions()
                if writer is not None:
                    writer.writeModel(pos, periodicBoxVectors=state.getPeriodicBoxVectors())
                else:
                    app.PDBFile.writeModel(topology, pos, fh, modelIndex=index)

            def sample(done):
                state = context.getState(getEnergy=True, getPositions=True)
                record(done, state)
                write_frame(state, len(rows))
                return rows[-1]

            sample(0)
            wall = run_in_chunks(steps, log_every, integrator.step, sample, f"OpenMM {ensemble.upper()} {n} atoms",
                                 progress)
            if writer is None:
                app.PDBFile.writeFooter(topology, fh)

    return summarise_run(rows, n, steps, wall, timestep_fs, ensemble, traj_path, log_path, png_path if plot else None)
