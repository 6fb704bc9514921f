"""Tiny experiment configs over the embedded sample data (importable from tests: tests/ is on sys.path)."""

import copy

TINY_MODEL = {
    "backbone": {"name": "resnet18"},
    "encoder": {"dim": 32, "num_layers": 1, "num_heads": 4, "num_points": 2, "ffn_dim": 64},
    "decoder": {"dim": 32, "depths": [1, 1, 1], "num_heads": 2, "window_size": 4},
}


def tiny_config(method=None, steps=4, domains=("lip", "pascal"), **train):
    roots = {"lip": "samples://lip", "pascal": "samples://pascal_person_part", "ccp": "samples://ccp"}
    cfg = {
        "recipe": "semantic",
        "seed": 0,
        "domains": {
            d: {"train": {"reader": "folder", "root": roots[d], "split": "train", "limit": 6},
                "val": {"reader": "folder", "root": roots[d], "split": "val", "limit": 2}}
            for d in domains
        },
        "model": copy.deepcopy(TINY_MODEL),
        "method": method or {"name": "supervised"},
        "data": {"transforms": {"crop_size": 64, "scale_range": [0.5, 1.0]}},
        "train": {"steps": steps, "batch_size": 4, "lr": 0.001, "log_every": 1, "checkpoint_every": 2,
                  "eval_every": 0, "schedule": {"type": "constant"}, **train},
        "eval": {"long_side": 96, "batch_size": 2},
    }
    return cfg
