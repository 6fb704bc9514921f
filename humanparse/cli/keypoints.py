"""``humanparse keypoints convert --format lip-csv|corrpm-json|mpii-mat IN --out keypoints.json``."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    from ..data.keypoints import POSE_FORMATS

    p = sub.add_parser("keypoints", help="pose annotations of LIP / MPII -> the keypoint JSON (score --task pose)")
    g = p.add_subparsers(dest="keypoints_action", metavar="ACTION")
    g.required = True
    conv = g.add_parser("convert", help="convert a release's pose annotations to the keypoint JSON")
    conv.add_argument("input", help="lip_val_set.csv (lip-csv), LIP_SP_*_annotations.json (corrpm-json) or "
                                    "mpii_human_pose_v1_u12_1.mat (mpii-mat)")
    conv.add_argument("--format", required=True, choices=list(POSE_FORMATS))
    conv.add_argument("--split", default="train", choices=["train", "test", "all"], help="mpii-mat: which images")
    conv.add_argument("--out", required=True, help="keypoint JSON to write")
    conv.set_defaults(run=run_convert)


def run_convert(args) -> int:
    from ..data.keypoints import read_pose_annotations, write_pose_json

    table = read_pose_annotations(args.input, args.format, split=args.split)
    write_pose_json(table, args.out)
    persons = sum(len(v) for v in table.values())
    print(json.dumps({"images": len(table), "persons": persons, "output": str(args.out)}))
    return 0
