"""SE(3)-Transformer specifics: e3nn conventions, layer-by-layer Wigner-D equivariance of the
type-1 and type-2 features, what holds under reflection, smooth attention, cached bases,
save/load, and NVE energy conservation in ASE. (The shared battery in
test_model_physics.py covers the energy/force symmetries, finite differences, stress,
periodic images, smoothness, batching and TorchScript.)
"""

import numpy as np
import pytest
import torch
from e3nn import o3

import geoff
from geoff import keys, structures_to_graph
from geoff.nn import EquivariantLinear, NormNonlinearity, SE3KernelBasis
from geoff.nn.se3_basis import enumerate_paths, fibre_dim
from tests.structures import CUTOFF, SPECIES, edge_inputs, ethanol, random_rotation, triclinic  # noqa: F401

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}
# Per-component features (relative to the largest of their block): in float32 the rounding of the
# edge vectors (~6e-8) is amplified by the degree-2L spherical harmonics and by cancellation in sums
# over ~40 periodic images; measured up to 1.6e-5 (triclinic, L = 3), ~1e-6 for ethanol.
FEATURE_TOL = {torch.float64: 1e-10, torch.float32: 5e-5}


def tiny(lmax=2, seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(lmax=lmax, channels=4, num_layers=3, num_heads=2, num_basis=6, radial_hidden=8, energy_scale=2.0)
    args.update(kw)
    return geoff.SE3TransformerPotential(SPECIES, cutoff=CUTOFF, **args).double()


def edges(model, atoms, dtype=torch.float64):
    """(species [N], edge_index [2, E], edge vectors [E, 3]) of one structure, periodic shifts included."""
    return edge_inputs(model, atoms, dtype)


def rotation_and_wigner_d(rng, lmax: int, dtype=torch.float64):
    """A random rotation R [3, 3] (numpy) and e3nn's block-diagonal real Wigner-D [(L+1)², (L+1)²]
    such that moving every position x ↦ x R maps a degree-ℓ feature f ↦ f D^ℓ.

    Built from Euler angles (``o3.angles_to_matrix`` / ``Irreps.D_from_angles``, i.e. what
    ``D_from_matrix(R)`` does) so that D is exact to rounding: recovering the angles from a
    matrix (``D_from_matrix``) loses ~1e-7 through acos, and e3nn computes D in the default
    dtype (float32 in the tests, ~2e-7 error), so float64 is set while D is built.
    """
    a, b, c = (torch.as_tensor(v, dtype=torch.float64) for v in rng.uniform(0, 2 * np.pi, size=3))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds D's generators in the default dtype
    try:
        R = o3.angles_to_matrix(a, b, c)
        D = o3.Irreps.spherical_harmonics(lmax).D_from_angles(a, b, c)
    finally:
        torch.set_default_dtype(default)
    return R.numpy(), D.to(dtype)


# ---- conventions -------------------------------------------------------------------------------

def test_e3nn_conventions_geoff_relies_on():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(7, 3)))
    sh = o3.SphericalHarmonics([0, 1, 2, 3], normalize=True, normalization="component")
    y = sh(x)
    unit = x / x.norm(dim=1, keepdim=True)
    assert torch.allclose(y[:, 1:4], np.sqrt(3.0) * unit, atol=1e-12)  # Y¹ = √3 (x, y, z)
    for l in range(4):
        norm2 = y[:, l * l:(l + 1) ** 2].pow(2).sum(1)
        assert torch.allclose(norm2, torch.full((7,), 2.0 * l + 1, dtype=torch.float64), atol=1e-12)
    R, D = rotation_and_wigner_d(rng, 3)
    assert torch.allclose(sh(x @ torch.as_tensor(R)), y @ D, atol=1e-12)  # Y(x R) = Y(x) D(R)


def test_paths_follow_the_triangle_rule():
    paths = enumerate_paths(2, 2)
    assert len(paths) == 19 and len(set(paths)) == 19
    assert all(abs(k - l) <= J <= k + l for k, J, l in paths)
    assert [p[2] for p in paths] == sorted(p[2] for p in paths)  # grouped by output degree
    assert enumerate_paths(0, 2) == [(0, 0, 0), (0, 1, 1), (0, 2, 2)]


@pytest.mark.parametrize("l_in,l_out", [(0, 2), (2, 2), (2, 0), (3, 3)])
def test_kernel_basis_is_equivariant(l_in, l_out):
    """B_p(r̂ R): every path maps a type-k input rotated by D^k to a type-ℓ output rotated by D^ℓ."""
    rng = np.random.default_rng(1)
    basis = SE3KernelBasis(l_in, l_out).double()
    sh = o3.SphericalHarmonics(list(range(l_in + l_out + 1)), normalize=True, normalization="component")
    x = torch.as_tensor(rng.normal(size=(5, 3)))
    f = torch.as_tensor(rng.normal(size=(5, 2, fibre_dim(l_in))))
    R, D = rotation_and_wigner_d(rng, max(l_in, l_out))
    Din, Dout = D[:fibre_dim(l_in), :fibre_dim(l_in)], D[:fibre_dim(l_out), :fibre_dim(l_out)]
    t0 = torch.bmm(f, basis(sh(x)))
    t1 = torch.bmm(f @ Din, basis(sh(x @ torch.as_tensor(R))))
    col = 0
    for k, J, l in basis.paths:
        d = 2 * l + 1
        Dl = Dout[l * l:(l + 1) ** 2, l * l:(l + 1) ** 2]
        assert torch.allclose(t1[..., col:col + d], t0[..., col:col + d] @ Dl, atol=1e-12), (k, J, l)
        assert t0[..., col:col + d].abs().max() > 1e-3, (k, J, l)  # the path is not trivially zero
        col += d
    assert col == basis.d_paths


def test_equivariant_linear_and_norm_nonlinearity():
    rng = np.random.default_rng(2)
    torch.manual_seed(0)
    lin, act = EquivariantLinear(2, 3, 5).double(), NormNonlinearity(2, 5).double()
    with torch.no_grad():
        lin.bias.normal_()
        act.a.normal_()
        act.b.normal_()
    f = torch.as_tensor(rng.normal(size=(4, 3, 9)))
    _, D = rotation_and_wigner_d(rng, 2)
    assert torch.allclose(act(lin(f @ D)), act(lin(f)) @ D, atol=1e-12)
    # smooth at f = 0: finite gradient, no NaN
    z = torch.zeros(1, 5, 9, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(act(z).sum(), z, create_graph=True)
    (g2,) = torch.autograd.grad(g.sum(), z)
    assert torch.isfinite(g).all() and torch.isfinite(g2).all()


# ---- layer-by-layer equivariance -------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("lmax", [2, 3])
@pytest.mark.parametrize("system", ["ethanol", "triclinic"])
def test_intermediate_features_rotate_with_wigner_d(system, lmax, dtype):
    """f^ℓ(x R) = f^ℓ(x) D^ℓ(R) after every layer, for ℓ = 0 … lmax (types 1 and 2 included)."""
    rng = np.random.default_rng(3)
    model = tiny(lmax, num_layers=4).to(dtype)
    atoms = {"ethanol": ethanol, "triclinic": triclinic}[system]()
    species, ei, vec = edges(model, atoms, dtype)
    R, D = rotation_and_wigner_d(rng, lmax, dtype)
    with torch.no_grad():
        f0 = model.features(species, ei, vec)
        f1 = model.features(species, ei, vec @ torch.as_tensor(R, dtype=dtype))
    assert len(f0) == 4 and f0[-1].shape[-1] == 1
    for layer, (a, b) in enumerate(zip(f0[:-1], f1[:-1])):
        assert a.shape[-1] == fibre_dim(lmax)
        for l in range(lmax + 1):
            s = slice(l * l, (l + 1) ** 2)
            block, rotated = a[..., s], b[..., s]
            scale = block.abs().max().item()
            assert scale > 1e-4, f"layer {layer} type-{l} features vanish"  # the test can fail
            err = (rotated - block @ D[s, s]).abs().max().item() / scale
            assert err <= FEATURE_TOL[dtype], f"layer {layer}, type {l}: relative error {err:.2e}"
    assert (f1[-1] - f0[-1]).abs().max().item() <= TOL[dtype] * f0[-1].abs().max().item()


# ---- reflections ------------------------------------------------------------------------------

def test_reflection_what_holds():
    """SE(3)-only: a mirror image has a different energy, but every improper transformation
    (any reflection, the inversion, rotation-reflections) gives one and the same energy and
    correspondingly transformed forces."""
    model = tiny(seed=4)
    rng = np.random.default_rng(4)
    atoms = ethanol()

    def ef(positions):
        a = atoms.copy()
        a.positions = positions
        out = model(structures_to_graph([a], model.cutoff, dtype=torch.float64))
        return out[keys.ENERGY].item(), out[keys.FORCES].detach().numpy()

    e0, _ = ef(atoms.positions)
    e_inv, f_inv = ef(-atoms.positions)
    assert abs(e_inv - e0) > 1e-8 * abs(e0)  # enantiomers are told apart (rounding is ~1e-16)
    for _ in range(3):
        P = random_rotation(rng, proper=False)
        e, f = ef(atoms.positions @ P)
        assert abs(e - e_inv) <= 1e-10 * abs(e_inv)
        assert np.abs(f - f_inv @ (-P)).max() <= 1e-9 * np.abs(f_inv).max()
    assert not geoff.SE3TransformerPotential.reflection_invariant


# ---- attention --------------------------------------------------------------------------------

def test_attention_weights_are_invariant_bounded_and_vanish_at_cutoff():
    model = tiny(seed=5)
    layer = model.layers[1]
    rng = np.random.default_rng(5)
    species, ei, vec = edges(model, ethanol())

    def alpha(v):
        lengths = v.norm(dim=1)
        sh = model.spherical_harmonics(v)
        f = model.layers[0](model.embedding(species).unsqueeze(-1), model.bases[model.basis_of_layer[0]](sh),
                            model.radial_basis(lengths), model.envelope(lengths), ei)
        k, _ = layer.edge_messages(f, model.bases[model.basis_of_layer[1]](sh), model.radial_basis(lengths), ei)
        return layer.attention(f, k, model.envelope(lengths), ei)

    with torch.no_grad():
        a0 = alpha(vec)
        a1 = alpha(vec @ torch.as_tensor(random_rotation(rng)))
    assert torch.allclose(a0, a1, atol=1e-12)
    sums = torch.zeros(len(species), a0.shape[1], dtype=a0.dtype).index_add(0, ei[0], a0)
    assert (a0 > 0).all() and (sums < 1).all()
    # an edge at r → r_c gets α → 0 like the envelope, (r_c − r)³
    v = vec.clone()
    v[0] = v[0] / v[0].norm() * (model.cutoff - 1e-3)
    with torch.no_grad():
        assert alpha(v)[0].max() < 1e-5


def test_bases_are_cached_not_rebuilt(monkeypatch):
    """The Clebsch–Gordan tensors are buffers built once: a forward pass never calls wigner_3j."""
    model = tiny(seed=6)
    assert any(name.endswith("cg") for name, _ in model.named_buffers())

    def fail(*args, **kwargs):
        raise AssertionError("wigner_3j called during a forward pass")

    monkeypatch.setattr(o3, "wigner_3j", fail)
    out = model(structures_to_graph([ethanol()], model.cutoff, dtype=torch.float64))
    assert torch.isfinite(out[keys.FORCES]).all()


# ---- dtype, save/load, errors -------------------------------------------------------------------

def test_float32_matches_float64():
    model = tiny(seed=7)
    atoms = triclinic()
    e64 = model(structures_to_graph([atoms], model.cutoff, dtype=torch.float64))
    model32 = tiny(seed=7).float()
    e32 = model32(structures_to_graph([atoms], model.cutoff, dtype=torch.float32))
    assert abs(e32[keys.ENERGY].item() - e64[keys.ENERGY].item()) <= 1e-5 * e64[keys.ATOMIC_ENERGIES].abs().sum()
    assert torch.allclose(e32[keys.FORCES].double(), e64[keys.FORCES], atol=1e-5 * e64[keys.FORCES].abs().max())


def test_save_load_round_trip(tmp_path):
    model = tiny(seed=8)
    model.set_reference_energies({"H": -13.6, "O": -2041.0})
    path = tmp_path / "se3.pt"
    geoff.save(model, path)
    loaded = geoff.load(path, dtype=torch.float64)
    assert type(loaded) is geoff.SE3TransformerPotential and loaded.config() == model.config()
    g = structures_to_graph([ethanol()], model.cutoff, dtype=torch.float64)
    a, b = model(g), loaded(g)
    assert torch.equal(a[keys.ENERGY], b[keys.ENERGY]) and torch.equal(a[keys.FORCES], b[keys.FORCES])


def test_deepcopy_for_weight_averaging():
    """Trainers deep-copy the model (EMA weights); e3nn's scripted SH function must not block that."""
    import copy

    model = tiny(seed=10)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.embedding.weight.add_(1.0)
    g = structures_to_graph([ethanol()], model.cutoff, dtype=torch.float64)
    assert not torch.equal(model(g)[keys.ENERGY], clone(g)[keys.ENERGY])  # independent weights
    assert torch.allclose(torch.jit.script(clone)(g)[keys.ENERGY], clone(g)[keys.ENERGY], rtol=1e-12, atol=0)


def test_clear_errors():
    with pytest.raises(geoff.GeoffInputError, match="multiple of num_heads"):
        geoff.SE3TransformerPotential(SPECIES, channels=6, num_heads=4)
    with pytest.raises(geoff.GeoffInputError, match="lmax"):
        geoff.SE3TransformerPotential(SPECIES, lmax=0)


# ---- molecular dynamics -----------------------------------------------------------------------

def test_nve_energy_conservation_ase():
    """Velocity Verlet with the GeoffCalculator: the total energy of ethanol (300 K start, 0.5 fs, 200 steps)
    fluctuates far less than the kinetic energy (measured: ratio ~1e-4).

    Random weights give no repulsive wall, so atoms may come close: the distance check is off;
    what is tested is that the forces integrate to the energy along a real trajectory."""
    from ase import units
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    model = tiny(seed=9)
    atoms = ethanol()
    atoms.calc = geoff.GeoffCalculator(model, min_distance=0.0)
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(9))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    etot, ekin = [], []

    def record():
        etot.append(atoms.get_total_energy())
        ekin.append(atoms.get_kinetic_energy())

    dyn.attach(record, interval=1)
    dyn.run(200)
    etot, ekin = np.array(etot), np.array(ekin)
    assert np.ptp(ekin) > 0.02  # atoms really moved on the potential
    assert np.ptp(etot) < 1e-3 * np.ptp(ekin)
