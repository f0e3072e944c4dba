"""Molecular dynamics through OpenMM with a geoff potential (``geoff md --engine openmm``).

The same run as :func:`geoff.ase.md.run_md`, in OpenMM: a System whose only
force is geoff's (TorchForce or PythonForce), VerletIntegrator for NVE or
LangevinMiddleIntegrator for NVT, a DCD or PDB trajectory. Only what is OpenMM's
lives here (the System, Context and integrator, stepping them, reading a frame in
geoff's units); the loop, its health checks, the energy log (same columns and units
as the ASE engine: eV, K, ps), drift and steps/s are :mod:`geoff.md`'s.
"""

import os
from typing import Optional

import numpy as np

from ..errors import GeoffInputError
from ..io import atomic_path, load_potential
from ..md.health import (HealthLimits, HealthMonitor, Snapshot, check_ensemble, check_md_input,
                         check_md_parameters)
from ..md.log import finish_run
from ..md.loop import FAILED_FRAME, prepare_output_dir, run_recorded, write_failed_frame
from ..units import EV_PER_ANGSTROM_TO_KJ_PER_MOL_PER_NM, EV_TO_KJ_PER_MOL, FS_PER_PS, NM_TO_ANGSTROM


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
        top.setPeriodicBoxVectors([openmm.Vec3(*v) for v in atoms.cell[:] / NM_TO_ANGSTROM] * unit.nanometer)
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
                  backend: str = "auto", trajectory_format: str = "dcd", overwrite: bool = True,
                  health_checks: bool = True, health_limits: Optional[HealthLimits] = None,
                  threads: Optional[int] = None, **force_options):
    """Run OpenMM MD; writes ``trajectory.dcd|pdb``, ``energies.csv`` and ``energies.png`` into ``output_dir``.

    Returns a :class:`geoff.md.log.MDResult` (drift in meV/atom/ps from a line fit of the total energy).
    ``platform``: "Reference", "CPU", "CUDA", "OpenCL"; ``threads``: the CPU platform's thread count
    (default: OpenMM's). ``force_options`` go to :func:`geoff.openmm.create_force` (outputs_forces,
    neighbour_list, dtype, device, cuda_graphs, compile).

    Each logged frame is checked as in :func:`geoff.ase.md.run_md` (``health_checks``,
    ``health_limits``); on a failure or Ctrl-C the frames up to the last good one are kept, the
    failing frame goes to ``failed-frame.xyz`` and :class:`geoff.md.health.MDFailure` (or
    ``MDInterrupted``) is raised. ``overwrite=False`` refuses an ``output_dir`` holding earlier results.
    """
    check_ensemble(ensemble)
    if trajectory_format not in ("dcd", "pdb"):
        raise GeoffInputError(f"trajectory_format must be 'dcd' or 'pdb', got {trajectory_format!r}.")
    potential = load_potential(potential) if isinstance(potential, (str, os.PathLike)) else potential
    check_md_input(atoms, potential)
    check_md_parameters(steps, timestep_fs, temperature_k, log_every, friction_per_fs)

    import openmm
    from openmm import app, unit

    try:
        plat = openmm.Platform.getPlatformByName(platform)
    except Exception as exc:
        names = [openmm.Platform.getPlatform(k).getName() for k in range(openmm.Platform.getNumPlatforms())]
        raise GeoffInputError(f"OpenMM platform {platform!r} is not available here; available: {names}.") from exc
    properties = {"Threads": str(int(threads))} if threads is not None and plat.getName() == "CPU" else {}

    out = prepare_output_dir(output_dir, overwrite)
    system, topology = build_simulation_system(atoms, potential, backend=backend, **force_options)
    n = len(atoms)
    dof = 3 * n - 3
    system.addForce(openmm.CMMotionRemover())
    dt = timestep_fs * unit.femtosecond
    if ensemble == "nve":
        integrator = openmm.VerletIntegrator(dt)
    else:
        integrator = openmm.LangevinMiddleIntegrator(temperature_k * unit.kelvin, friction_per_fs * FS_PER_PS / unit.picosecond, dt)
        integrator.setRandomNumberSeed(int(seed) + 1)
    context = openmm.Context(system, integrator, plat, properties)
    context.setPositions(atoms.positions / NM_TO_ANGSTROM)
    context.setVelocitiesToTemperature(temperature_k * unit.kelvin, int(seed) + 1)
    # remove the centre-of-mass velocity now, not at the CMMotionRemover's first step (that
    # would show as a jump of the kinetic energy, and a false "drift" of the total energy)
    masses = np.asarray(atoms.get_masses())[:, None]
    v = np.asarray(context.getState(getVelocities=True).getVelocities(asNumpy=True).value_in_unit(
        unit.nanometer / unit.picosecond))
    context.setVelocities(v - (masses * v).sum(0) / masses.sum())

    rows = []
    kb = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)
    ev_per_nm = unit.kilojoule_per_mole / unit.nanometer
    numbers, cell, pbc = atoms.numbers.copy(), atoms.cell[:].copy(), atoms.pbc.copy()
    failed_path = out / FAILED_FRAME
    monitor = HealthMonitor(numbers, cell, pbc, ensemble, temperature_k, dof, health_limits, health_checks)
    start_step = context.getStepCount()

    def observe(done: int):
        state = context.getState(getEnergy=True, getPositions=True, getForces=True)
        t = done * timestep_fs / FS_PER_PS
        epot = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
        ekin_kj = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        ekin = ekin_kj / EV_TO_KJ_PER_MOL
        positions = np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)) * NM_TO_ANGSTROM
        forces = np.asarray(state.getForces(asNumpy=True).value_in_unit(ev_per_nm)) / EV_PER_ANGSTROM_TO_KJ_PER_MOL_PER_NM
        snap = Snapshot(done, t, positions, (t, epot, ekin, epot + ekin, 2.0 * ekin_kj / (dof * kb)), forces)
        snap.state = state
        return snap

    def salvage(step: int):
        state = context.getState(getPositions=True)
        positions = np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)) * NM_TO_ANGSTROM
        return Snapshot(step, step * timestep_fs / FS_PER_PS, positions)

    def write_failed(snap: Snapshot) -> None:
        write_failed_frame(failed_path, numbers, cell, pbc, snap)

    traj_path = out / f"trajectory.{trajectory_format}"
    log_path, png_path = out / "energies.csv", out / "energies.png"
    with atomic_path(traj_path) as tmp_traj:
        with open(tmp_traj, "w" if trajectory_format == "pdb" else "wb") as fh:
            writer = app.DCDFile(fh, topology, dt, 0, log_every) if trajectory_format == "dcd" else None

            def commit(snap: Snapshot) -> None:
                rows.append(snap.row)
                pos = snap.state.getPositions()
                if writer is not None:
                    writer.writeModel(pos, periodicBoxVectors=snap.state.getPeriodicBoxVectors())
                else:
                    app.PDBFile.writeModel(topology, pos, fh, modelIndex=len(rows))

            wall, stopped = run_recorded(steps, log_every, integrator.step, observe, commit,
                                         f"OpenMM {ensemble.upper()} {n} atoms", progress, monitor=monitor,
                                         steps_done=lambda: context.getStepCount() - start_step, salvage=salvage,
                                         on_failure=write_failed, timestep_fs=timestep_fs)
            if writer is None:
                app.PDBFile.writeFooter(topology, fh)

    return finish_run(rows, n, wall, timestep_fs, ensemble, traj_path, log_path, png_path if plot else None,
                      stopped, failed_path)
