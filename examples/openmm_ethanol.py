"""geoff in OpenMM, three ways, on ethanol. Copy what you need.

    .venv/bin/python examples/openmm_ethanol.py

1. openmm-ml:   MLPotential("geoff", model=...).createSystem(topology)
2. TorchForce:  geoff.openmm.export(...) writes a file openmm-torch loads without geoff
3. ML/MM:       MLPotential("geoff", ...).createMixedSystem(topology, mm_system, ml_atoms)

Uses the shipped "ethanol-egnn" potential when it is installed, else a
random-weight model (the plumbing is the same; the numbers are not physical).
"""

import openmm
import torch
from ase.build import molecule
from openmm import app, unit
from openmmml import MLPotential

import geoff
import geoff.openmm
from geoff.openmm.md import topology_from_atoms

if "ethanol-egnn" in geoff.shipped_potentials():
    model = "ethanol-egnn"
else:
    torch.manual_seed(0)
    model = geoff.EGNNPotential(["H", "C", "O"], cutoff=5.0, hidden=32, num_layers=3)
    print("(ethanol-egnn is not installed: using a random-weight model)")

atoms = molecule("CH3CH2OH")
topology = topology_from_atoms(atoms)   # or app.PDBFile("ethanol.pdb").topology
positions = atoms.positions / 10.0      # OpenMM works in nm

# 1. openmm-ml: an all-ML System, Langevin dynamics at 300 K
potential = MLPotential("geoff", model=model)
system = potential.createSystem(topology)
integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtosecond)
simulation = app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName("CPU"))
simulation.context.setPositions(positions)
simulation.minimizeEnergy(maxIterations=50)
simulation.context.setVelocitiesToTemperature(300 * unit.kelvin)
simulation.step(200)
state = simulation.context.getState(getEnergy=True)
print("1. openmm-ml   E_pot after 200 steps:", state.getPotentialEnergy())

# 2. a self-contained TorchScript file for openmm-torch's TorchForce
geoff.openmm.export(model, "ethanol-geoff.pt", topology=topology)
import openmmtorch  # noqa: E402  (import torch first where openmm-torch's CUDA libraries are not on the path)

force = openmmtorch.TorchForce("ethanol-geoff.pt")
# the file returns the energy in kJ/mol; openmm-torch differentiates it (export with
# outputs_forces=True for a file that returns forces too, then call force.setOutputsForces(True))
system2 = openmm.System()
for m in atoms.get_masses():
    system2.addParticle(m)
system2.addForce(force)
ctx = openmm.Context(system2, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("CPU"))
ctx.setPositions(positions)
print("2. TorchForce  E_pot:", ctx.getState(getEnergy=True).getPotentialEnergy())

# 3. ML/MM: one water molecule by geoff inside TIP3P water by Amber (openmm-ml's mechanical
#    embedding removes the MM terms inside the ML region; for a ligand, build mm_system with a
#    ligand force field such as GAFF or OpenFF, then pass the ligand's atom indices).
ff = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
modeller = app.Modeller(app.Topology(), [])
modeller.addSolvent(ff, boxSize=openmm.Vec3(1.6, 1.6, 1.6) * unit.nanometer)
mm_system = ff.createSystem(modeller.topology, nonbondedMethod=app.PME, nonbondedCutoff=0.7 * unit.nanometer,
                            rigidWater=False, constraints=None)
ml_atoms = [a.index for a in next(modeller.topology.residues()).atoms()]
mixed = potential.createMixedSystem(modeller.topology, mm_system, ml_atoms)
integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.5 * unit.femtosecond)
simulation = app.Simulation(modeller.topology, mixed, integrator, openmm.Platform.getPlatformByName("CPU"))
simulation.context.setPositions(modeller.positions)
simulation.minimizeEnergy(maxIterations=50)
simulation.step(20)
print("3. ML/MM       E_pot after 20 steps:", simulation.context.getState(getEnergy=True).getPotentialEnergy(),
      f"({len(ml_atoms)} ML atoms of {mixed.getNumParticles()})")
