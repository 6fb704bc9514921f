"""``humanparse score --task semantic|instance|pose|edge --pred ... --gt ... --json``: score saved predictions."""

from __future__ import annotations

import json

from ..errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("score", help="score saved predictions against ground truth (community definitions)")
    p.add_argument("--task", required=True, choices=["semantic", "instance", "pose", "edge"])
    p.add_argument("--pred", required=True, help="folder of predicted PNGs (semantic/edge/instance) or a JSON file (pose)")
    p.add_argument("--gt", required=True, help="folder of ground-truth PNGs, or a JSON file (pose)")
    p.add_argument("--num-classes", type=int, help="number of classes (semantic: required; instance: default 20)")
    p.add_argument("--ignore-index", type=int, default=255)
    p.add_argument("--nms", action="store_true",
                   help="edge: run the HED/BDCN edge NMS on each prediction first (for raw network outputs)")
    p.add_argument("--max-dist", type=float, default=0.0075,
                   help="edge: matching tolerance as a fraction of the image diagonal (BSDS: 0.0075)")
    p.add_argument("--head-rule", choices=["auto", "lip", "mpii"], default="auto",
                   help="pose: head size from head_size / head_box (MPII: 0.6 x box diagonal) / joints (LIP)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.num_classes is not None and args.num_classes < 1:
        raise ConfigError(f"--num-classes must be a positive number of classes (got {args.num_classes})")
    if args.task == "semantic":
        from ..metrics.semantic import score_semantic_dirs

        if args.num_classes is None:
            raise ConfigError("--task semantic needs --num-classes N")
        result = score_semantic_dirs(args.pred, args.gt, args.num_classes, ignore_index=args.ignore_index)
    elif args.task == "instance":
        from ..metrics.instance import score_instance_dirs

        result = score_instance_dirs(args.pred, args.gt, num_classes=args.num_classes or 20)
    elif args.task == "pose":
        from ..metrics.pose import score_pose_files

        result = score_pose_files(args.pred, args.gt, head_rule=args.head_rule)
    else:
        from ..metrics.edge import score_edge_dirs

        result = score_edge_dirs(args.pred, args.gt, max_dist=args.max_dist, nms=args.nms)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0
