import pytest
import torch

from humanparse.errors import ConfigError
from humanparse.models.decoders.swin_decoder import SwinUpDecoder
from humanparse.models.encoders.deformable_encoder import DeformableEncoder, reference_points, sine_position_encoding


def test_encoder_shapes_and_cross_level_mixing():
    torch.manual_seed(0)
    enc = DeformableEncoder([8, 12, 16], dim=32, num_layers=2, num_heads=4, num_points=2, ffn_dim=64).eval()
    feats = [torch.randn(1, c, s, s + 1) for c, s in ((8, 8), (12, 4), (16, 2))]
    out = enc(feats)
    assert [tuple(o.shape) for o in out] == [(1, 32, 8, 9), (1, 32, 4, 5), (1, 32, 2, 3)]
    changed = [f.clone() for f in feats]
    changed[2] = changed[2] + torch.randn_like(changed[2])  # only the stride-32 input changes
    assert not torch.allclose(enc(changed)[0], out[0])  # ... and the stride-8 output sees it
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
    e8, e16, e32, c4 = torch.randn(2, 24, 8, 6), torch.randn(2, 24, 4, 3), torch.randn(2, 24, 2, 2), torch.randn(2, 10, 16, 12)
    e32 = e32[..., :2]
    e32 = torch.randn(2, 24, 2, 2)[..., :2]
    out = dec([e8, e16, torch.randn(2, 24, 2, 2)[:, :, :, :2]], c4) if False else None
    e32 = torch.randn(2, 24, 2, 1)
    e32 = torch.randn(2, 24, 2, 2)
    out = dec([e8, e16, e32[..., :2]], c4) if e32.shape[-1] * 2 != e16.shape[-1] else None
