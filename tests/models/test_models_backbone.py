import pytest
import timm
import torch
from safetensors.torch import save_file

from humanparse.errors import CheckpointError, ConfigError
from humanparse.models import TimmBackbone


def test_levels_chosen_by_stride():
    bb = TimmBackbone("test_resnet")
    assert bb.strides == [4, 8, 16, 32]
    feats = bb(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == bb.out_channels
    assert [f.shape[-1] for f in feats] == [64 // s for s in bb.strides]
    coarse = TimmBackbone("test_resnet", strides=(8, 32))
    assert coarse.strides == [8, 32] and coarse.out_channels == [bb.out_channels[1], bb.out_channels[3]]


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ConfigError, match="did you mean.*'resnet50'"):
        TimmBackbone("resnt50")


def test_missing_stride_is_a_config_error():
    with pytest.raises(ConfigError, match=r"strides \[4, 8, 32\] are missing"):
        TimmBackbone("test_vit")  # a plain ViT: every level has stride 16


def test_local_weights(tmp_path):
    torch.manual_seed(1)
    full = timm.create_model("test_resnet", pretrained=False)  # with classifier, as a downloaded file is
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(path))
    bb = TimmBackbone("test_resnet", pretrained=str(path))
    loaded, source = bb.model.state_dict(), full.state_dict()
    assert len(loaded) > 10 and not any(k.startswith("fc.") for k in loaded)
    for key, tensor in loaded.items():
        torch.testing.assert_close(tensor, source[key], msg=key)
    fresh = TimmBackbone("test_resnet").model.state_dict()
    assert not torch.equal(fresh["layer4.0.conv1.weight"], loaded["layer4.0.conv1.weight"])

    with pytest.raises(CheckpointError, match="not found"):
        TimmBackbone("test_resnet", pretrained=str(tmp_path / "missing.pth"))
    other = tmp_path / "other.pth"
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), other)
    with pytest.raises(CheckpointError, match="other.pth"):
        TimmBackbone("test_resnet", pretrained=str(other))
