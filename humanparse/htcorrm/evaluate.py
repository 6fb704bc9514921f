"""Validation of an HTCorrM network for each of its tasks, with the project's one metric per task.

- parsing: ``engine.evaluator.evaluate_domain`` (confusion matrix at the original image size,
  ``metrics.semantic``) on the main output O_m when parsing is the main task, else on the parsing
  encoder's head.
- pose: heatmaps decoded with ``metrics.pose.decode_heatmaps``, mapped back to original image pixels
  through the inverse of the evaluation warp, PCKh@0.5 (``metrics.pose.pckh``) with the LIP head
  size (head-top to upper-neck of the ground truth); images without both head joints are left out.
- edge: the edge probability (softmax channel 1, upsampled to the evaluation size) against the
  *undilated* 8-connected edges of the warped parsing label (``edges_from_labels``, both sides of a
  border: the thin ground truth, not the training band), ODS/OIS by ``metrics.edge.EdgeEvaluator``;
  padding pixels get probability 0.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..metrics.edge import EdgeEvaluator, edges_from_labels
from ..metrics.pose import lip_head_size, pckh
from .labels import decode_pose

__all__ = ["evaluate_edge", "evaluate_parsing", "evaluate_pose"]


class _ParsingView(nn.Module):
    """Exposes an HTCorrM network's parsing prediction as ``{"logits": {domain: ...}}``."""

    def __init__(self, net: nn.Module, domain: str):
        super().__init__()
        self.net, self.domain = net, domain

    def forward(self, images, domains=None):
        out = self.net(images)
        logits = out["main"] if self.net.main_task == "parsing" else out["encoders"]["parsing"]
        return {"logits": {self.domain: logits}}


def _task_output(out: dict, net: nn.Module, task: str) -> torch.Tensor:
    return out["main"] if net.main_task == task else out["encoders"][task]


def evaluate_parsing(model: nn.Module, records, domain: str, label_space, *, long_side=None, batch_size: int = 4,
                     device="cpu") -> dict:
    from ..data.io import load_label, read_image
    from ..engine.evaluator import evaluate_domain

    def samples():
        for rec in records:
            label, _ = load_label(rec, label_space.num_classes, label_space.ignore_index)
            yield read_image(rec.image, apply_exif=False), label

    was_training = model.training
    model.eval()
    try:
        r = evaluate_domain(_ParsingView(model, domain), samples(), domain, label_space, long_side=long_side,
                            batch_size=batch_size, device=device)
    finally:
        model.train(was_training)
    return {f"{domain}/mIoU": r["mIoU"], f"{domain}/pixel_acc": r["pixel_acc"], f"{domain}/mean_acc": r["mean_acc"],
            f"{domain}/per_class_iou": r["per_class_iou"]}


@torch.inference_mode()
def _outputs(model: nn.Module, ds, indices, device, task: str):
    was_training = model.training
    model.eval()
    try:
        for i in indices:
            item = ds[i]
            out = model(item["image"][None].to(device))
            yield i, item, _task_output(out, model, task)[0].float().cpu()
    finally:
        model.train(was_training)


def evaluate_pose(model: nn.Module, ds, indices, *, device="cpu") -> dict:
    """PCKh@0.5 of the pose output against the dataset's keypoints (original image pixels)."""
    preds, gts, vis = [], [], []
    for i, item, heat in _outputs(model, ds, indices, device, "pose"):
        kp = decode_pose(heat.numpy(), stride=ds.stride)[:, :2]
        m = np.asarray(item["meta"]["affine"], np.float64)
        inv = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
        preds.append(kp @ inv[:, :2].T + inv[:, 2])
        gt = ds.keypoints[ds.records[i].stem]
        gts.append(gt[:, :2])
        vis.append(gt[:, 2] > 0)
    if not preds:
        return {"pose/PCKh": None, "pose/num_images": 0}
    gts_a, vis_a = np.stack(gts), np.stack(vis)
    head = lip_head_size(gts_a, vis_a)
    keep = np.isfinite(head) & (head > 0)
    if not keep.any():
        return {"pose/PCKh": None, "pose/num_images": 0}
    r = pckh(np.stack(preds)[keep], np.nan_to_num(gts_a[keep]), vis_a[keep], head[keep])
    return {"pose/PCKh": r["mean"], "pose/PCKh_pooled_14": r["pooled_14"], "pose/num_images": int(keep.sum())}


def evaluate_edge(model: nn.Module, ds, indices, *, device="cpu") -> dict:
    """ODS / OIS of the edge output against thin edges of the parsing labels."""
    ev = EdgeEvaluator()
    ignore = ds.label_space.ignore_index
    for _, item, logits in _outputs(model, ds, indices, device, "edge"):
        label = item["label"].numpy()
        prob = F.interpolate(logits[None], size=label.shape, mode="bilinear", align_corners=False)
        prob = prob.softmax(1)[0, 1].numpy()
        prob[label == ignore] = 0.0
        ev.add(prob, edges_from_labels(label, connectivity=ds.edge_connectivity, ignore_index=ignore))
    if not ev.counts:
        return {"edge/ODS": None, "edge/OIS": None}
    r = ev.compute()
    return {"edge/ODS": r["ODS"], "edge/OIS": r["OIS"], "edge/AP": r["AP"]}
