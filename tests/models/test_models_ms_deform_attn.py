import math

import pytest
import torch

from humanparse.errors import ConfigError
from humanparse.models.encoders.ms_deform_attn import MSDeformAttn, ms_deform_attn


def naive_ms_deform_attn(value, shapes, locations, weights):
    """Loop over every query/head/level/point; bilinear by hand, zero outside, pixel centres at +0.5."""
    batch, _, n_heads, head_dim = value.shape
    _, queries, _, _, n_points, _ = locations.shape
    out = torch.zeros(batch, queries, n_heads, head_dim, dtype=value.dtype)
    starts = [0]
    for h, w in shapes:
        starts.append(starts[-1] + h * w)
    for b in range(batch):
        for q in range(queries):
            for head in range(n_heads):
                for lvl, (h, w) in enumerate(shapes):
                    for p in range(n_points):
                        x = locations[b, q, head, lvl, p, 0].item() * w - 0.5
                        y = locations[b, q, head, lvl, p, 1].item() * h - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        sample = torch.zeros(head_dim, dtype=value.dtype)
                        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                                if 0 <= yy < h and 0 <= xx < w:
                                    sample += wy * wx * value[b, starts[lvl] + yy * w + xx, head]
                        out[b, q, head] += weights[b, q, head, lvl, p] * sample
    return out.reshape(batch, queries, n_heads * head_dim)


def _case(dtype=torch.float64, requires_grad=False):
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (2, 3)]
    batch, queries, heads, dim, points = 2, 5, 2, 3, 3
    value = torch.randn(batch, sum(h * w for h, w in shapes), heads, dim, generator=g, dtype=dtype)
    # some locations fall outside [0, 1] to exercise zero padding
    locations = torch.rand(batch, queries, heads, len(shapes), points, 2, generator=g, dtype=dtype) * 1.4 - 0.2
    weights = torch.rand(batch, queries, heads, len(shapes), points, generator=g, dtype=dtype)
    tensors = [t.requires_grad_(requires_grad) for t in (value, locations, weights)]
    return tensors[0], shapes, tensors[1], tensors[2]


def test_op_matches_naive_bilinear_float64():
    value, shapes, locations, weights = _case()
    out = ms_deform_attn(value, shapes, locations, weights)
    assert out.shape == (2, 5, 6)
    torch.testing.assert_close(out, naive_ms_deform_attn(value, shapes, locations, weights), rtol=1e-10, atol=1e-10)


def test_op_gradcheck():
    value, shapes, locations, weights = _case(requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v, loc, w: ms_deform_attn(v, shapes, loc, w), (value, locations, weights), eps=1e-6, atol=1e-5
    )


def test_op_pixel_centres_and_zero_padding():
    h, w = 3, 4
    value = torch.arange(h * w, dtype=torch.float64).view(1, h * w, 1, 1)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    centres = torch.stack([(xs.flatten() + 0.5) / w, (ys.flatten() + 0.5) / h], -1).double()
    loc = centres.view(1, h * w, 1, 1, 1, 2)
    ones = torch.ones(1, h * w, 1, 1, 1, dtype=torch.float64)
    torch.testing.assert_close(ms_deform_attn(value, [(h, w)], loc, ones).flatten(), value.flatten())
    far = torch.full((1, 1, 1, 1, 1, 2), 3.0, dtype=torch.float64)  # well outside the map
    assert ms_deform_attn(value, [(h, w)], far, ones[:, :1]).abs().max() == 0


def test_module_init_like_deformable_detr():
    m = MSDeformAttn(32, n_levels=3, n_heads=8, n_points=4)
    offsets = m.sampling_offsets.bias.detach().view(8, 3, 4, 2)
    for p in range(4):  # point p sits on the square of radius p + 1, at every level
        torch.testing.assert_close(offsets[:, :, p].abs().amax(-1), torch.full((8, 3), float(p + 1)))
    directions = offsets[:, 0, 0]
    assert torch.cdist(directions, directions).add(torch.eye(8)).min() > 0.1  # one direction per head
    query = torch.randn(2, 5, 32)
    weights = m.attention_weights(query).view(2, 5, 8, 12).softmax(-1)
    torch.testing.assert_close(weights, torch.full_like(weights, 1 / 12))  # uniform at start


def test_module_shapes_bf16_autocast_and_errors():
    torch.manual_seed(0)
    m = MSDeformAttn(16, n_levels=2, n_heads=2, n_points=2)
    shapes = [(4, 4), (2, 2)]
    value = torch.randn(1, 20, 16)
    ref = torch.rand(1, 20, 2, 2)
    out = m(value, ref, value, shapes)
    assert out.shape == (1, 20, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = m(value, ref, value, shapes)
    assert torch.isfinite(low).all()
    torch.testing.assert_close(low.float(), out, rtol=0.05, atol=0.05)
    with pytest.raises(ValueError, match="2 levels"):
        m(value, ref, value, shapes[:1])
    with pytest.raises(ConfigError, match="divisible"):
        MSDeformAttn(10, n_heads=3)


def test_offsets_and_weights_are_float32_under_bf16_autocast(monkeypatch):
    """The sampling locations and attention weights under bf16 autocast equal the float32 ones: the
    offset / weight projections run with autocast off (``.float()`` after a bf16 linear would not)."""
    import sys

    module = sys.modules[MSDeformAttn.__module__]
    torch.manual_seed(0)
    m = MSDeformAttn(32, n_levels=2, n_heads=4, n_points=2, impl="pytorch")  # the op the spy replaces
    with torch.no_grad():  # trained-like projections: offsets of several pixels, peaked weights
        torch.nn.init.normal_(m.sampling_offsets.weight, std=1.0)
        torch.nn.init.normal_(m.attention_weights.weight, std=1.0)
    shapes = [(16, 16), (8, 8)]
    value = torch.randn(1, 320, 32)
    ref = torch.rand(1, 320, 2, 2)
    seen = []

    def spy(v, s, locations, weights):
        seen.append((locations, weights))
        return ms_deform_attn(v, s, locations, weights)

    monkeypatch.setattr(module, "ms_deform_attn", spy)
    m(value, ref, value, shapes)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m(value, ref, value, shapes)
    (loc32, w32), (loc16, w16) = seen
    assert loc16.dtype == torch.float32 and w16.dtype == torch.float32
    torch.testing.assert_close(loc16, loc32, rtol=0, atol=1e-6)
    torch.testing.assert_close(w16, w32, rtol=0, atol=1e-6)
