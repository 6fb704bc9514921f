"""Validation of an HTCorrM network for each of its tasks, with the project's one metric per task.

- parsing: ``engine.evaluator.evaluate_domain`` (confusion matrix at the original image size,
  ``metrics.semantic``) on the main output O_m when parsing is the main task, else on the parsing
  encoder's head.
- pose: heatmaps decoded with ``metrics.pose.decode_heatmaps``, mapped back to original image pixels
  through the inverse of the evaluation warp, scored against a **real** ground-truth table (the
  domain's ``val_keypoints``; pseudo-labels are refused by the recipe) with PCKh@0.5. Headline
  ``pose/PCKh`` = the community number (pooled over the 14 joints other than pelvis and thorax: LIP
  "Avg.", MPII "Mean"); head size per person by ``metrics.pose.person_head_size``: MPII's rule (0.6 x
  head-box diagonal) when the table has head boxes, LIP's (head-top to upper-neck) otherwise.
  Persons without a head size are left out, as in the LIP protocol.
- edge: the edge probability (softmax channel 1 at the network's input size) is warped back to the
  original image (inverse of the evaluation warp, bilinear; outside the image = 0), put through the
  HED/BDCN edge NMS (``metrics.edge.edge_nms``) and scored against the **thin** edges of the
  original parsing label (``edges_from_labels(thin=True)``: one pixel wide, as BSDS's boundaries),
  ODS/OIS by ``metrics.edge.EdgeEvaluator`` with the BSDS tolerance 0.0075 x the original image's
  diagonal. A perfect prediction scores ODS = OIS = 1 (tested).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DataError
from ..metrics.edge import EdgeEvaluator, edge_nms, edges_from_labels
from ..metrics.pose import pckh, person_head_size
from .labels import decode_pose

__all__ = ["edge_maps", "evaluate_edge", "evaluate_parsing", "evaluate_pose", "warp_back"]


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


def evaluate_pose(model: nn.Module, ds, indices, *, gt_table: dict, head_rule: str = "auto", device="cpu") -> dict:
    """PCKh@0.5 of the pose output against ``gt_table`` (``{stem: [person]}``, original image pixels).

    The network decodes one pose per image, so each image must have exactly one ground-truth person
    (LIP; MPII/CIHP multi-person images are scored with ``score --task pose`` instead)."""
    preds, gts, vis, heads = [], [], [], []
    skipped = 0
    for i, item, heat in _outputs(model, ds, indices, device, "pose"):
        stem = ds.records[i].stem
        persons = gt_table.get(stem)
        if persons is None:
            raise DataError("<val_keypoints>", f"image {stem!r} has no ground-truth keypoints")
        if len(persons) != 1:
            raise DataError("<val_keypoints>", f"image {stem!r} has {len(persons)} persons; training-time pose "
                            "evaluation decodes one person per image (score several with `humanparse score --task pose`)")
        head, _ = person_head_size(persons[0], head_rule)
        if not head > 0:
            skipped += 1
            continue
        kp = decode_pose(heat.numpy(), stride=ds.stride)[:, :2]
        m = np.asarray(item["meta"]["affine"], np.float64)
        inv = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
        preds.append(kp @ inv[:, :2].T + inv[:, 2])
        gt = persons[0]["keypoints"]
        gts.append(np.nan_to_num(gt[:, :2]))
        vis.append(gt[:, 2] > 0)
        heads.append(head)
    if not preds:
        return {"pose/PCKh": None, "pose/num_images": 0, "pose/skipped_images": skipped}
    r = pckh(np.stack(preds), np.stack(gts), np.stack(vis), np.asarray(heads))
    return {"pose/PCKh": r["pooled_14"], "pose/PCKh_joint_mean": r["mean"], "pose/num_images": len(preds),
            "pose/skipped_images": skipped}


def warp_back(prob: np.ndarray, affine, size: tuple[int, int]) -> np.ndarray:
    """Map [H', W'] values on the warped grid back to the original (h, w) image: the inverse of the
    2x3 ``affine`` (original -> warped pixel centres), bilinear, 0 outside the warped grid."""
    h, w = int(size[0]), int(size[1])
    return cv2.warpAffine(np.asarray(prob, np.float32), np.asarray(affine, np.float64), (w, h),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0.0).astype(np.float64)


def edge_maps(model: nn.Module, ds, indices, *, device="cpu"):
    """Yield (edge probability after NMS, thin ground-truth edges), both at the original image size."""
    ignore = ds.label_space.ignore_index
    for i, item, logits in _outputs(model, ds, indices, device, "edge"):
        label = ds.reader.load(i)["label"]
        if label is None:
            raise DataError(str(ds.records[i].label), "edge evaluation needs the parsing label of this image")
        grid = item["image"].shape[-2:]
        prob = F.interpolate(logits[None], size=grid, mode="bilinear", align_corners=False).softmax(1)[0, 1].numpy()
        prob = warp_back(prob, item["meta"]["affine"], label.shape)
        prob[label == ignore] = 0.0
        gt = edges_from_labels(label, connectivity=ds.edge_connectivity, ignore_index=ignore, thin=True)
        yield edge_nms(prob), gt


def evaluate_edge(model: nn.Module, ds, indices, *, device="cpu") -> dict:
    """ODS / OIS / AP of the edge output against thin edges of the parsing labels, at the original size."""
    ev = EdgeEvaluator()
    for prob, gt in edge_maps(model, ds, indices, device=device):
        ev.add(prob, gt)
    if not ev.counts:
        return {"edge/ODS": None, "edge/OIS": None}
    r = ev.compute()
    return {"edge/ODS": r["ODS"], "edge/OIS": r["OIS"], "edge/AP": r["AP"]}
