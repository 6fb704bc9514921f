import pytest
import torch

from humanparse.errors import ConfigError
from humanparse.models.decoders.swin_decoder import SwinUpDecoder
from humanparse.models.encoders.deformable_encoder import (
    DeformableEncoder,
    reference_points,
    sine_position_encoding,
)


def test_encoder_shapes_and_cross_level_mixing():
    torch.manual_seed(0)
    enc = DeformableEncoder([8, 12, 16], dim=32, num_layers=2, num_heads=4, num_points=2, ffn_dim=64).eval()
    feats = [torch.randn(1, c, s, s + 1) for c, s in ((8, 8), (12, 4), (16, 2))]
    out = enc(feats)
    assert [tuple(o.shape) for o in out] == [(1, 32, 8, 9), (1, 32, 4, 5), (1, 32, 2, 3)]
    changed = [f.clone() for f in feats]
    changed[2] = changed[2] + torch.randn_like(changed[2])  # only the stride-32 input changes
    assert (enc(changed)[0] - out[0]).abs().max() > 1e-3  # ... and the stride-8 output sees it
    # ... only through the deformable attention's samples of level 2: with every query's weight on level 2
    # forced to 0, the stride-8 (and stride-16) outputs do not move at all
    for layer in enc.modules():
        if hasattr(layer, "attention_weights") and hasattr(layer, "n_levels"):
            with torch.no_grad():
                bias = layer.attention_weights.bias.view(layer.n_heads, layer.n_levels, layer.n_points)
                layer.attention_weights.weight.view(layer.n_heads, layer.n_levels, layer.n_points, -1)[:, 2] = 0
                bias[:, 2] = -1e4
    cut = enc(feats)
    cut_changed = enc(changed)
    torch.testing.assert_close(cut_changed[0], cut[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(cut_changed[1], cut[1], rtol=0, atol=1e-6)
    assert (cut_changed[2] - cut[2]).abs().max() > 1e-3  # the stride-32 output itself still changes
    with pytest.raises(ValueError, match="expects 3 maps"):
        enc(feats[:2])


def test_position_code_and_reference_points():
    pos = sine_position_encoding(3, 5, 16)
    assert pos.shape == (15, 16)
    grid = pos.view(3, 5, 16)
    assert torch.equal(grid[:, 0, :8], grid[:, 4, :8])  # first half depends on y only
    assert torch.equal(grid[0, :, 8:], grid[2, :, 8:])  # second half on x only
    assert len({tuple(p.tolist()) for p in pos}) == 15  # every pixel distinct
    ref = reference_points([(2, 4), (1, 2)])
    torch.testing.assert_close(ref[:4], torch.tensor([[0.125, 0.25], [0.375, 0.25], [0.625, 0.25], [0.875, 0.25]]))
    torch.testing.assert_close(ref[8:], torch.tensor([[0.25, 0.5], [0.75, 0.5]]))
    with pytest.raises(ConfigError):
        DeformableEncoder([8, 8, 8], dim=30, num_heads=3)


def test_decoder_scales_and_laterals():
    torch.manual_seed(0)
    dec = SwinUpDecoder(encoder_dim=24, lateral_channels=[10, 24, 24], dim=16, depths=(1, 1, 2), num_heads=2,
                        window_size=4).eval()
    # a 64x96 image: stride 4, 8, 16, 32
    c4, e8, e16, e32 = (torch.randn(2, c, 64 // s, 96 // s) for c, s in ((10, 4), (24, 8), (24, 16), (24, 32)))
    out = dec([e8, e16, e32], c4)
    assert list(out) == ["H1", "H2", "H3", "F"]
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "H1": (2, 16, 4, 6), "H2": (2, 16, 8, 12), "H3": (2, 16, 16, 24), "F": (2, 16, 16, 24)}
    assert not isinstance(dec.input_proj, torch.nn.Identity) and dec.out_dim == 16  # 24 -> 16 needs a projection
    # every input reaches F; the backbone stride-4 map only at 1/4 (H1, H2 do not depend on it)
    for index, name in enumerate(["e8", "e16", "e32", "c4"]):
        inputs = [e8, e16, e32, c4]
        inputs[index] = inputs[index] + torch.randn_like(inputs[index])
        new = dec(inputs[:3], inputs[3])
        assert not torch.allclose(new["F"], out["F"]), name
        if name == "c4":
            assert torch.equal(new["H2"], out["H2"])
    with pytest.raises(ConfigError, match="3 lateral_channels"):
        SwinUpDecoder(encoder_dim=24, lateral_channels=[10, 24], dim=16, num_heads=2)
