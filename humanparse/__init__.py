"""humanparse: human parsing (body parts and clothes) over several label domains.

The public API fits on one screen:

>>> import humanparse
>>> parser = humanparse.Parser.from_checkpoint("model.safetensors")   # parse users' images
>>> net = humanparse.build_network({"backbone": {"name": "resnet50"}}, {"lip": 20, "pascal": 7})
>>> humanparse.get_label_space("lip").names
>>> humanparse.train(humanparse.load_config("configs/sst_demo.yaml"))
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "Parser", "load_model", "build_network", "get_label_space", "list_label_spaces", "LabelSpace",
    "load_config", "train", "HumanparseError", "__version__",
]


def __getattr__(name: str):
    # Lazy: `import humanparse` stays cheap, and nothing training-only is imported at inference.
    if name == "Parser":
        from .api import Parser

        return Parser
    if name == "load_model":
        from .engine.loading import load_model

        return load_model
    if name == "build_network":
        from .models import build_network

        return build_network
    if name in ("get_label_space", "list_label_spaces", "LabelSpace"):
        from . import labels

        return getattr(labels, name)
    if name == "load_config":
        from .config import load_config

        return load_config
    if name == "train":
        from .engine.trainer import train

        return train
    if name == "HumanparseError":
        from .errors import HumanparseError

        return HumanparseError
    raise AttributeError(f"module 'humanparse' has no attribute {name!r}")
