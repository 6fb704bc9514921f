import pytest
import torch

from humanparse.errors import ConfigError
from humanparse.models.decoders.swin_blocks import SwinBlock


def naive_block(block: SwinBlock, x: torch.Tensor) -> torch.Tensor:
    """Per-query loop (batch 1): a query attends to the real tokens of its (shifted) window and shift region."""
    b, h, w, c = x.shape
    ws, shift, attn = block.window, block.shift, block.attn
    hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
    if max(hp, wp) <= ws:
        shift = 0
    heads, hd = attn.num_heads, c // attn.num_heads
    y = block.norm1(x)
    q, k, v = attn.qkv(y).view(b, h, w, 3, heads, hd).unbind(3)

    def where(i, j):  # position in the rolled, padded frame
        ri, rj = (i - shift) % hp, (j - shift) % wp
        region = lambda r, n: 0 if r < n - ws else (1 if r < n - shift else 2)
        key = (ri // ws, rj // ws, region(ri, hp) if shift else 0, region(rj, wp) if shift else 0)
        return key, ri % ws, rj % ws

    out = torch.zeros(b, h, w, c, dtype=x.dtype)
    tokens = [(i, j) for i in range(h) for j in range(w)]
    for i, j in tokens:
        key_q, qi, qj = where(i, j)
        keys = [(ki, kj) for ki, kj in tokens if where(ki, kj)[0] == key_q]
        for head in range(heads):
            logits, values = [], []
            for ki, kj in keys:
                _, ki_w, kj_w = where(ki, kj)
                rel = (qi - ki_w + ws - 1) * (2 * ws - 1) + (qj - kj_w + ws - 1)
                logits.append(q[0, i, j, head] @ k[0, ki, kj, head] * hd**-0.5 + attn.bias_table[rel, head])
                values.append(v[0, ki, kj, head])
            out[0, i, j, head * hd:(head + 1) * hd] = torch.stack(logits).softmax(0) @ torch.stack(values)
    x = x + attn.proj(out)
    return x + block.mlp(block.norm2(x))


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("size", [(8, 8), (6, 7), (3, 3)])  # exact, padded, one padded window
def test_swin_block_matches_per_query_reference(shift, size):
    torch.manual_seed(0)
    block = SwinBlock(8, 2, window=4, shift=shift).double()
    with torch.no_grad():
        block.attn.bias_table.normal_()  # make a wrong relative index visible
    x = torch.randn(1, *size, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(block(x), naive_block(block, x), rtol=1e-9, atol=1e-9)


def test_shift_changes_which_tokens_interact():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 8, 8)
    for shift, crosses in ((False, False), (True, True)):
        block = SwinBlock(8, 2, window=4, shift=shift)
        x2 = x.clone()
        x2[0, 3, 3] += torch.randn(8)  # last token of the top-left window (not a constant: LayerNorm ignores that)
        changed = (block(x2) - block(x)).abs().sum(-1)[0] > 1e-6
        assert bool(changed[4:, 4:].any()) == crosses  # bottom-right window sees it only through the shift


def test_swin_block_bad_heads():
    with pytest.raises(ConfigError, match="divisible"):
        SwinBlock(10, 3)
