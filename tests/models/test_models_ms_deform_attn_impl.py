"""The deformable-attention op's implementations (``impl: gather|pytorch|compiled|embedding_bag``): chosen
explicitly, same results; ``gather`` (the default) and ``embedding_bag`` against the float64 grid_sample reference."""

import importlib
import shutil

import pytest
import torch

from humanparse.errors import ConfigError
from humanparse.models import build_network
from humanparse.models.encoders.ms_deform_attn import DEFAULT_IMPL, MSDeformAttn, ms_deform_attn, set_attn_impl
from humanparse.models.encoders.ms_deform_attn_bag import ms_deform_attn_bag
from humanparse.models.encoders.ms_deform_attn_gather import ms_deform_attn_gather

mda = importlib.import_module("humanparse.models.encoders.ms_deform_attn")  # the module (the package re-exports the op)


def _inputs(dim=16, shapes=((6, 5), (3, 3)), batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = sum(h * w for h, w in shapes)
    query = torch.randn(batch, tokens, dim, generator=g)
    ref = torch.rand(batch, tokens, len(shapes), 2, generator=g)
    return query, ref, list(shapes)


def test_impl_is_explicit_and_validated(monkeypatch):
    calls = []

    def recording_op(*args):
        calls.append(1)
        return ms_deform_attn(*args)

    monkeypatch.setattr(mda, "compiled_ms_deform_attn", lambda: recording_op)
    torch.manual_seed(0)
    attn = MSDeformAttn(16, n_levels=2, n_heads=2, n_points=2)
    query, ref, shapes = _inputs()
    assert attn.impl == DEFAULT_IMPL == "gather"
    attn(query, ref, query, shapes)
    assert calls == []  # the default never touches torch.compile
    set_attn_impl(attn, "pytorch")
    eager = attn(query, ref, query, shapes)
    set_attn_impl(attn, "compiled")
    assert torch.equal(attn(query, ref, query, shapes), eager) and calls == [1]
    with pytest.raises(ConfigError, match="did you mean 'compiled'"):
        MSDeformAttn(16, n_levels=2, n_heads=2, n_points=2, impl="compild")
    with pytest.raises(ConfigError, match="valid: compiled, embedding_bag, gather, pytorch"):
        set_attn_impl(attn, "cuda")


def _op_case(dtype=torch.float64, requires_grad=False):
    """Levels of different sizes; locations partly outside [0, 1] (zero padding) and on pixel edges."""
    g = torch.Generator().manual_seed(1)
    shapes = [(3, 4), (2, 3), (1, 2)]
    value = torch.randn(2, sum(h * w for h, w in shapes), 2, 3, generator=g, dtype=dtype)
    locations = torch.rand(2, 7, 2, len(shapes), 3, 2, generator=g, dtype=dtype) * 1.6 - 0.3
    locations[0, 0, 0, 0, 0] = torch.tensor([0.0, 1.0], dtype=dtype)  # the map's corner
    weights = torch.rand(2, 7, 2, len(shapes), 3, generator=g, dtype=dtype)
    return [t.requires_grad_(requires_grad) for t in (value, locations, weights)], shapes


def test_embedding_bag_op_equals_the_grid_sample_op_float64():
    from test_models_ms_deform_attn import naive_ms_deform_attn

    (value, locations, weights), shapes = _op_case()
    got = ms_deform_attn_bag(value, shapes, locations, weights)
    torch.testing.assert_close(got, ms_deform_attn(value, shapes, locations, weights), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got, naive_ms_deform_attn(value, shapes, locations, weights), rtol=1e-10, atol=1e-10)


def test_embedding_bag_op_gradcheck():
    (value, locations, weights), shapes = _op_case(requires_grad=True)
    with torch.no_grad():  # keep finite differences away from pixel-centre kinks
        locations.copy_(locations + 0.013)
    assert torch.autograd.gradcheck(lambda v, loc, w: ms_deform_attn_bag(v, shapes, loc, w),
                                    (value, locations, weights), eps=1e-6, atol=1e-5)


def _border_case(dtype=torch.float64):
    """Locations exactly on the clamp band's edges (pixel -1 and pixel w), on the map's edges, and far outside."""
    (value, locations, weights), shapes = _op_case(dtype)
    for lvl, (h, w) in enumerate(shapes):
        edges = torch.tensor([-0.5 / w, 0.0, 0.5 / w, 1.0, (w + 0.5) / w, -3.0, 5.0, 1.0 - 0.25 / w], dtype=dtype)
        picks = edges[torch.randint(len(edges), locations[..., lvl, :, 0].shape, generator=torch.Generator().manual_seed(lvl))]
        locations[..., lvl, :, 0] = picks
        locations[1, :, :, lvl, :, 1] = (h + 0.5) / h  # a whole batch element on the bottom clamp edge
    return (value, locations, weights), shapes


@pytest.mark.parametrize("case", [_op_case, _border_case])
def test_gather_op_equals_the_grid_sample_op_float64(case):
    from test_models_ms_deform_attn import naive_ms_deform_attn

    (value, locations, weights), shapes = case()
    got = ms_deform_attn_gather(value, shapes, locations, weights)
    torch.testing.assert_close(got, ms_deform_attn(value, shapes, locations, weights), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got, naive_ms_deform_attn(value, shapes, locations, weights), rtol=1e-10, atol=1e-10)


def test_gather_op_gradcheck():
    (value, locations, weights), shapes = _op_case(requires_grad=True)
    with torch.no_grad():  # keep finite differences away from pixel-centre kinks
        locations.copy_(locations + 0.013)
    assert torch.autograd.gradcheck(lambda v, loc, w: ms_deform_attn_gather(v, shapes, loc, w),
                                    (value, locations, weights), eps=1e-6, atol=1e-5)


def test_gather_op_gradients_equal_the_grid_sample_op():
    """Also outside the maps, where both ops have zero location gradients (clamped / zero padding)."""
    (value, locations, weights), shapes = _border_case()
    with torch.no_grad():
        locations.add_(0.013)
    grads = []
    for op in (ms_deform_attn_gather, ms_deform_attn):
        inputs = [t.detach().clone().requires_grad_(True) for t in (value, locations, weights)]
        op(inputs[0], shapes, inputs[1], inputs[2]).sin().sum().backward()
        grads.append([t.grad for t in inputs])
    for got, expected in zip(*grads):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_embedding_bag_module_matches_pytorch_in_float32():
    torch.manual_seed(0)
    attn = MSDeformAttn(16, n_levels=2, n_heads=2, n_points=2)
    with torch.no_grad():
        attn.sampling_offsets.bias.mul_(3.0)
        attn.attention_weights.weight.normal_()
    query, ref, shapes = _inputs()
    set_attn_impl(attn, "pytorch")
    expected = attn(query, ref, query, shapes)
    for impl in ("embedding_bag", "gather"):
        set_attn_impl(attn, impl)
        torch.testing.assert_close(attn(query, ref, query, shapes), expected, rtol=1e-5, atol=1e-5)


def test_encoder_config_key_reaches_every_layer(tiny_cfg, num_classes):
    tiny_cfg["encoder"].update(num_layers=2, attn_impl="compiled")
    net = build_network(tiny_cfg, num_classes)
    layers = [m for m in net.modules() if isinstance(m, MSDeformAttn)]
    assert len(layers) == 2 and {m.impl for m in layers} == {"compiled"}
    assert net.config["model_cfg"]["encoder"]["attn_impl"] == "compiled"
    set_attn_impl(net, "pytorch")
    assert {m.impl for m in layers} == {"pytorch"}
    tiny_cfg["encoder"]["attn_impl"] = "triton"
    with pytest.raises(ConfigError, match="deformable-attention impl 'triton'"):
        build_network(tiny_cfg, num_classes)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile (Inductor) on the CPU needs a C++ compiler (g++/c++ not found)")
def test_compiled_op_matches_the_reference_on_cpu():
    """One compilation (tens of seconds on a cold Inductor cache, a few with a warm one)."""
    torch.manual_seed(0)
    attn = MSDeformAttn(16, n_levels=2, n_heads=2, n_points=2)
    with torch.no_grad():  # sampling far from the reference points, partly outside the maps (zero padding)
        attn.sampling_offsets.bias.mul_(3.0)
        attn.attention_weights.weight.normal_()
    query, ref, shapes = _inputs()
    expected = attn(query, ref, query, shapes)
    set_attn_impl(attn, "compiled")
    got = attn(query, ref, query, shapes)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    query.requires_grad_(True)  # and it trains: gradients agree too
    got = attn(query, ref, query, shapes).square().sum()
    (grad_compiled,) = torch.autograd.grad(got, query)
    set_attn_impl(attn, "pytorch")
    (grad_eager,) = torch.autograd.grad(attn(query, ref, query, shapes).square().sum(), query)
    torch.testing.assert_close(grad_compiled, grad_eager, rtol=1e-4, atol=1e-5)
