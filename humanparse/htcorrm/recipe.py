"""The ``htcorrm`` recipe and training method: parsing + pose + edge with one main task (HTCorrM).

Config sections it reads (``configs/htcorrm_*.yaml``)::

    recipe: htcorrm
    domains:                        # exactly one label domain
      lip:
        label_space: lip
        train: {reader: shared, root: samples://lip, split: train}
        val:   {reader: shared, root: samples://lip, split: val}
        keypoints: samples://lip/keypoints.json     # training targets, when pose is the main or an aux task
        val_keypoints: shared://LIP/val_keypoints.json   # real annotations, needed to evaluate pose
    model:                          # humanparse.htcorrm.model.build_htcorrm
      backbone: {name: resnet101, pretrained: null, output_stride: 16, stem: plain}
      main_task: parsing            # parsing | pose | edge
      aux_tasks: [edge, pose]       # subset of the other two (repeats = Table 7 rows 8/9)
      fusion: hnl                   # none | self | concat | hnl
      channels: 512, aspp_channels: 256, aspp_rates: [12, 24, 36], edge_levels: [0, 1, 2], ...
    method: {name: htcorrm, loss_weights: {parsing: 1, pose: 50, edge: 2}, edge_balance: true,
             pose_mask_missing: true}
    data: {crop_size: 384, scale_range: [0.75, 1.25], rotation: 60, rotation_prob: 1.0, flip_prob: 0.5,
           edge_connectivity: 8, edge_dilation: 1, heatmap_stride: 4, sigma: 2}
    eval: {long_side: null, batch_size: 4, max_images: null, tasks: [<main task>], size: 384,
           head_rule: auto}         # pose: auto | lip | mpii (metrics.pose.person_head_size)

Table 7 ablations are (fusion, aux_tasks) pairs: see ``humanparse.htcorrm.model`` and docs/htcorrm.md.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from ..config import section
from ..engine.methods import TrainingMethod, register_method
from ..engine.recipes import Recipe, register_recipe
from ..errors import ConfigError, check_keys
from .losses import HTCorrMLoss
from .model import TASKS, build_htcorrm

__all__ = ["HTCorrMMethod", "HTCorrMRecipe"]

DOMAIN_KEYS = {"label_space", "train", "val", "keypoints", "val_keypoints"}
DATA_KEYS = {"crop_size", "scale_range", "rotation", "rotation_prob", "flip_prob", "edge_connectivity",
             "edge_dilation", "heatmap_stride", "sigma"}
EVAL_KEYS = {"long_side", "batch_size", "max_images", "tasks", "size", "head_rule"}
METHOD_KEYS = {"name", "loss_weights", "edge_balance", "pose_mask_missing", "ignore_index"}


@register_method("htcorrm")
class HTCorrMMethod(TrainingMethod):
    """Eq. 4 on an ``HTCorrMNet``: named terms ``main/<task>`` (L_m) and ``<task>`` (weighted encoder losses)."""

    def __init__(self, *, main_task: str, tasks: list[str], fused: bool, loss_weights: dict | None = None,
                 edge_balance: bool = True, pose_mask_missing: bool = True, ignore_index: int = 255):
        super().__init__()
        self.loss = HTCorrMLoss(main_task=main_task, tasks=tasks, fused=fused, weights=loss_weights,
                                edge_balance=edge_balance, pose_mask_missing=pose_mask_missing,
                                ignore_index=ignore_index)

    @classmethod
    def from_config(cls, cfg: dict, *, model: nn.Module, label_spaces: dict | None = None) -> HTCorrMMethod:
        cfg = {k: v for k, v in dict(cfg or {}).items() if k != "name"}
        check_keys("key in method (htcorrm)", cfg, METHOD_KEYS - {"name"})
        if not hasattr(model, "main_task"):
            raise ConfigError("the htcorrm method trains an HTCorrM network (recipe: htcorrm)")
        return cls(main_task=model.main_task, tasks=list(model.tasks), fused=model.fusion is not None, **cfg)

    def training_step(self, model: nn.Module, batch: dict) -> dict[str, Tensor]:
        return self.loss(model(batch["image"]), batch)


@register_recipe("htcorrm")
class HTCorrMRecipe(Recipe):
    def __init__(self, cfg: dict, *, root: Path | str = "."):
        super().__init__(cfg, root=root)
        from ..labels import get_label_space

        domains = cfg.get("domains")
        if not isinstance(domains, dict) or len(domains) != 1:
            raise ConfigError("recipe htcorrm needs 'domains' with exactly one label domain (e.g. lip)")
        (self.domain, dcfg), = domains.items()
        self.domain_cfg = dict(dcfg or {})
        check_keys(f"key in domains.{self.domain}", self.domain_cfg, DOMAIN_KEYS)
        self.label_space = get_label_space(self.domain_cfg.get("label_space", self.domain))
        self.model_cfg = dict(cfg.get("model") or {})
        self.data_cfg = section(cfg, "data", DATA_KEYS)
        self.eval_cfg = section(cfg, "eval", EVAL_KEYS)
        main = self.model_cfg.get("main_task", "parsing")
        aux = self.model_cfg.get("aux_tasks")
        self.tasks = [main] + (list(aux) if aux is not None else [t for t in TASKS if t != main])
        for t in self.eval_cfg.get("tasks") or []:
            if t not in TASKS:
                raise ConfigError(f"eval.tasks: unknown task {t!r} (choose from {list(TASKS)})")
        if "pose" in (self.eval_cfg.get("tasks") or [main]) and "val_keypoints" not in self.domain_cfg:
            raise ConfigError(f"pose is evaluated (eval.tasks or main_task), so domains.{self.domain}.val_keypoints must"
                              " name real annotations of the val split; pseudo-labels never score a model")

    # -- model and method ------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        return build_htcorrm(self.model_cfg, num_classes=self.label_space.num_classes, domain=self.domain)

    def build_method(self, model: nn.Module) -> nn.Module:
        mcfg = dict(self.cfg.get("method") or {})
        if mcfg.get("name", "htcorrm") != "htcorrm":
            raise ConfigError(f"recipe htcorrm trains with method 'htcorrm', not {mcfg['name']!r}")
        return HTCorrMMethod.from_config(mcfg, model=model, label_spaces={self.domain: self.label_space})

    def label_space_dicts(self) -> dict[str, dict]:
        return {self.domain: self.label_space.to_dict()}

    # -- data ------------------------------------------------------------------------------
    def _records(self, split: str) -> list:
        from ..engine.semantic_recipe import read_split

        if split not in self.domain_cfg:
            raise ConfigError(f"domains.{self.domain} has no '{split}' split")
        return read_split(self.domain_cfg[split], self.domain, self.root)

    def keypoints(self) -> tuple[dict | None, str | None]:
        """The keypoint table when pose is used, else (None, None)."""
        from ..engine.semantic_recipe import resolve_root
        from .dataset import load_keypoints

        if "pose" not in self.tasks:
            return None, None
        if "keypoints" not in self.domain_cfg:
            raise ConfigError(f"pose is a task here, so domains.{self.domain}.keypoints must name a keypoint JSON file"
                              " (make one with `humanparse pseudo-label pose`)")
        path = resolve_root(self.domain_cfg["keypoints"], self.root)
        return load_keypoints(path), str(path)

    def val_pose_table(self) -> dict:
        """The real ground-truth keypoints of the val split (``domains.<d>.val_keypoints``).

        Pose is never scored against pseudo-labels (they are what the model was trained to imitate):
        a file written by ``humanparse pseudo-label pose`` is refused."""
        from ..engine.semantic_recipe import resolve_root
        from .dataset import load_pose_table

        if "val_keypoints" not in self.domain_cfg:
            raise ConfigError(f"eval.tasks has pose, so domains.{self.domain}.val_keypoints must name the real "
                              "annotations of the val split (e.g. `humanparse keypoints convert --format lip-csv "
                              "lip_val_set.csv --out val_keypoints.json`)")
        path = resolve_root(self.domain_cfg["val_keypoints"], self.root)
        table, pseudo = load_pose_table(path)
        if pseudo:
            raise ConfigError(f"{path}: these keypoints are pseudo-labels (written by `humanparse pseudo-label pose`);"
                              " pose is evaluated against real annotations only")
        return table

    def _dataset(self, split: str, *, train: bool, size=None):
        from .dataset import HTCorrMDataset

        kp, kp_file = self.keypoints() if train else (None, None)  # evaluation reads its own ground truth
        opts = dict(self.data_cfg)
        if size is not None:
            opts["crop_size"] = size
        return HTCorrMDataset(self._records(split), self.label_space, kp, train=train,
                              seed=int(self.cfg.get("seed", 0)), keypoint_file=kp_file, **opts)

    def build_train_dataset(self):
        return self._dataset("train", train=True)

    def collate(self, items):
        from .dataset import collate_htcorrm

        return collate_htcorrm(items)

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, model: nn.Module, *, max_images: int | None = None) -> dict:
        from .evaluate import evaluate_edge, evaluate_parsing, evaluate_pose

        max_images = max_images or self.eval_cfg.get("max_images")
        tasks = list(self.eval_cfg.get("tasks") or [model.main_task])
        device = next(model.parameters()).device
        results: dict = {}
        for task in tasks:
            if task not in model.tasks:
                raise ConfigError(f"eval.tasks: the network has no {task!r} output (tasks: {model.tasks})")
            if task == "parsing":
                results.update(evaluate_parsing(model, self._records("val")[: max_images or None], self.domain,
                                                self.label_space, long_side=self.eval_cfg.get("long_side"),
                                                batch_size=int(self.eval_cfg.get("batch_size", 4)), device=device))
                continue
            size = self.eval_cfg.get("size", self.data_cfg.get("crop_size", 384))
            ds = self._dataset("val", train=False, size=size)
            indices = range(min(len(ds), max_images or len(ds)))
            if task == "pose":
                results.update(evaluate_pose(model, ds, indices, gt_table=self.val_pose_table(),
                                             head_rule=str(self.eval_cfg.get("head_rule", "auto")), device=device))
            else:
                results.update(evaluate_edge(model, ds, indices, device=device))
        return results

    def inference_model(self, model: nn.Module) -> nn.Module:
        return model  # the encoders feed HNL, so the whole network is the inference network
