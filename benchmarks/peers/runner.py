"""Time one peer force field on one system along one path, in benchmarks/.venv-peers.

    benchmarks/.venv-peers/bin/python benchmarks/peers/runner.py --model mace-small --system ethanol --path torch

benchmarks/run.py calls this in a subprocess; it never imports geoff. Every
model gets random (seeded) weights at the sizes of the reference table in benchmarks/README.md:

    mace-small     mace-torch MACE: 128x0e, max_ell 3, correlation 3, 2 layers, r_c 5 Å
    mace-medium    the same with 128x0e+128x1o
    tensornet      torchmd-net TensorNet: 128 channels, 2 layers, r_c 5 Å
    nequip         NequIP (nequip ≥ 0.7 framework): l_max 1, 32 features, 4 layers, r_c 5 Å
    egnn-pytorch   lucidrains egnn-pytorch EGNN_Network: dim 64, depth 4, dense graph, no PBC
    se3-pytorch    lucidrains se3-transformer-pytorch: dim 32, num_degrees 2, depth 2, dense, no PBC

Paths: ``torch`` = the peer's own structure → input conversion (neighbour list
rebuilt every call) + energy and forces (autograd); ``ase`` = one
ase.md.VelocityVerlet step with the peer's own ASE calculator (MACE, NequIP).
"""

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
sys.path.insert(0, BENCH)
import harness  # noqa: E402
from systems import make_system  # noqa: E402

SPECIES = ["H", "C", "N", "O"]
Z = [1, 6, 7, 8]
CUTOFF = 5.0


def _mace_model(args, hidden_irreps: str):
    # MACE is pinned to e3nn 0.4.4; setup.sh installs that copy beside the venv.
    side = os.path.join(sys.prefix, "mace-e3nn")
    if os.path.isdir(side):
        sys.path.insert(0, side)
    # e3nn 0.4.4 reads its own shipped constants file with torch.load, which
    # torch ≥ 2.6 refuses under weights_only=True (the file holds a slice); the
    # file is e3nn's own, so the old default is restored for this process only.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import torch
    from e3nn import o3
    from mace import modules

    torch.manual_seed(0)
    torch.set_default_dtype(getattr(torch, args.dtype))
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model = modules.MACE(
        r_max=CUTOFF, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=block, interaction_cls_first=block, num_interactions=2,
        num_elements=len(Z), hidden_irreps=o3.Irreps(hidden_irreps), MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.zeros(len(Z)), avg_num_neighbors=20.0, atomic_numbers=Z, correlation=3,
        gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64],
    )
    return model.eval()


def mace_cell(args, hidden_irreps: str):
    model = _mace_model(args, hidden_irreps)
    import torch
    from mace import data as mace_data
    from mace.tools import torch_geometric, utils

    atoms = make_system(args.system)
    if args.path == "ase":
        from mace.calculators import MACECalculator

        calc = MACECalculator(models=model, device=args.device, default_dtype=args.dtype)
        return _ase_cell(atoms, calc)
    z_table = utils.AtomicNumberTable(Z)
    keyspec = mace_data.KeySpecification(info_keys={}, arrays_keys={})

    def step():
        config = mace_data.config_from_atoms(atoms, key_specification=keyspec)
        graph = mace_data.AtomicData.from_config(config, z_table=z_table, cutoff=CUTOFF)
        batch = torch_geometric.Batch.from_data_list([graph]).to(args.device)
        out = model(batch.to_dict(), compute_force=True, training=False)
        out["forces"].detach().cpu()

    config = mace_data.config_from_atoms(atoms, key_specification=keyspec)
    edges = int(mace_data.AtomicData.from_config(config, z_table=z_table, cutoff=CUTOFF)["edge_index"].shape[1])
    return {"step": step, "atoms": len(atoms), "edges": edges, "params": _params(model)}


def tensornet_cell(args):
    import torch
    from torchmdnet.models.model import create_model

    torch.manual_seed(0)
    hp = dict(model="tensornet", embedding_dimension=128, num_layers=2, num_rbf=32, rbf_type="expnorm",
              trainable_rbf=False, activation="silu", cutoff_lower=0.0, cutoff_upper=CUTOFF, max_z=128,
              max_num_neighbors=128, equivariance_invariance_group="O(3)", static_shapes=False,
              precision=32 if args.dtype == "float32" else 64, derivative=True, atom_filter=-1,
              prior_model=None, output_model="Scalar", reduce_op="add", check_errors=True, box_vecs=None)
    model = create_model(hp).to(args.device).eval()
    atoms = make_system(args.system)
    if args.path != "torch":
        raise RuntimeError("torchmd-net's ASE calculator loads only checkpoint files; torch path only")
    dtype = getattr(torch, args.dtype)
    z = torch.tensor(atoms.numbers, device=args.device)
    batch = torch.zeros(len(atoms), dtype=torch.long, device=args.device)
    box = torch.tensor(atoms.cell.array, dtype=dtype, device=args.device) if atoms.pbc.any() else None
    pos_np = atoms.positions

    def step():
        pos = torch.tensor(pos_np, dtype=dtype, device=args.device)
        energy, neg_dy = model(z, pos, batch=batch, box=box)
        neg_dy.detach().cpu()

    return {"step": step, "atoms": len(atoms), "edges": None, "params": _params(model)}


def nequip_cell(args):
    import torch
    from nequip.data import AtomicDataDict, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform
    from nequip.model import NequIPGNNModel
    from nequip.utils.global_state import set_global_state

    set_global_state()
    model = NequIPGNNModel(seed=0, model_dtype=args.dtype, r_max=CUTOFF, type_names=SPECIES, num_layers=4,
                           l_max=1, num_features=32, avg_num_neighbors=20.0).to(args.device).eval()
    transforms = [ChemicalSpeciesToAtomTypeMapper(model_type_names=SPECIES),
                  NeighborListTransform(r_max=CUTOFF)]
    atoms = make_system(args.system)
    if args.path == "ase":
        from nequip.integrations.ase import NequIPCalculator

        return _ase_cell(atoms, NequIPCalculator(model, device=args.device, transforms=transforms))

    def to_data():
        data = from_ase(atoms)
        for t in transforms:
            data = t(data)
        return AtomicDataDict.to_(data, torch.device(args.device))

    def step():
        out = model(to_data())
        out[AtomicDataDict.FORCE_KEY].detach().cpu()

    edges = int(to_data()[AtomicDataDict.EDGE_INDEX_KEY].shape[1])
    return {"step": step, "atoms": len(atoms), "edges": edges, "params": _params(model)}


def _dense_cell(args, model, atoms, kind: str):
    """lucidrains models: dense (all pairs), open boundaries; energy = sum of node outputs."""
    import torch

    if atoms.pbc.any():
        raise RuntimeError(f"{args.model} has no periodic boundary conditions")
    if args.path != "torch":
        raise RuntimeError(f"{args.model} has no ASE calculator; torch path only")
    dtype = getattr(torch, args.dtype)
    species = {z: k for k, z in enumerate(Z)}
    tokens = torch.tensor([[species[int(z)] for z in atoms.numbers]], device=args.device)
    pos_np = atoms.positions
    model = model.to(args.device, dtype).eval()

    def step():
        pos = torch.tensor(pos_np[None], dtype=dtype, device=args.device, requires_grad=True)
        if kind == "egnn":
            feats, _ = model(tokens, pos)
        else:
            feats = model(tokens, pos, return_type=0)
        energy = feats.sum()
        forces = -torch.autograd.grad(energy, pos)[0]
        forces.detach().cpu()

    return {"step": step, "atoms": len(atoms), "edges": len(atoms) * (len(atoms) - 1), "params": _params(model)}


def egnn_pytorch_cell(args):
    import torch
    from egnn_pytorch import EGNN_Network

    torch.manual_seed(0)
    model = EGNN_Network(num_tokens=len(Z), dim=64, depth=4)
    return _dense_cell(args, model, make_system(args.system), "egnn")


def se3_pytorch_cell(args):
    import torch
    from se3_transformer_pytorch import SE3Transformer

    torch.manual_seed(0)
    model = SE3Transformer(num_tokens=len(Z), dim=32, num_degrees=2, depth=2, output_degrees=1,
                           reduce_dim_out=True)
    return _dense_cell(args, model, make_system(args.system), "se3")


def _ase_cell(atoms, calc):
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.RandomState(0))
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    return {"step": lambda: dyn.run(1), "atoms": len(atoms), "edges": None, "params": _params(calc_model(calc))}


def calc_model(calc):
    return getattr(calc, "model", None) or calc.models[0]


def _params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


PEERS = {
    "mace-small": lambda a: mace_cell(a, "128x0e"),
    "mace-medium": lambda a: mace_cell(a, "128x0e+128x1o"),
    "tensornet": tensornet_cell,
    "nequip": nequip_cell,
    "egnn-pytorch": egnn_pytorch_cell,
    "se3-pytorch": se3_pytorch_cell,
}


def build(args):
    if args.model not in PEERS:
        raise ValueError(f"unknown peer {args.model!r}; choose from {sorted(PEERS)}")
    return PEERS[args.model](args)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.common_arguments(parser)
    args = parser.parse_args(argv)
    return harness.run_cell(args, build)


if __name__ == "__main__":
    sys.exit(main())
