"""``humanparse pseudo-label pose IMAGES... --out keypoints.json``: BlazePose (optional extra) -> 16 MPII/LIP joints."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("pseudo-label", help="make pseudo-labels (pose keypoints) with an off-the-shelf estimator")
    g = p.add_subparsers(dest="pseudo_kind", metavar="KIND")
    g.required = True
    pose = g.add_parser("pose", help="MediaPipe BlazePose keypoints mapped to the 16 MPII/LIP joints")
    pose.add_argument("inputs", nargs="+", help="image files, folders or globs")
    pose.add_argument("--out", required=True, help="keypoints JSON to write")
    pose.set_defaults(run=run_pose)
    edge = g.add_parser("edge", help="edge maps derived from parsing labels")
    edge.add_argument("labels", help="folder of label PNGs")
    edge.add_argument("--out", required=True, help="folder for the thin (one-pixel) edge PNGs (0/1)")
    edge.add_argument("--connectivity", type=int, default=4, choices=[4, 8])
    edge.set_defaults(run=run_edge)


def run_pose(args) -> int:
    from ..api import expand_inputs
    from ..htcorrm.pseudo_label import pseudo_label_pose

    pseudo_label_pose(expand_inputs(args.inputs), args.out)
    return 0


def run_edge(args) -> int:
    from ..htcorrm.labels import write_edge_maps

    write_edge_maps(args.labels, args.out, connectivity=args.connectivity)
    return 0
