"""``humanparse pseudo-label pose IMAGES... --out keypoints.json``: BlazePose (optional extra) -> 16 MPII/LIP joints.
``humanparse pseudo-label parts --data ROOT --source ccp --domain lip --out DIR``: labelled photos of one label space
-> labels of another (ground truth where the two agree, the model's choice among the candidates elsewhere)."""

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
    parts = g.add_parser("parts", help="relabel labelled photos into another label space: the ground truth decides "
                                       "where the spaces agree, a parsing model chooses among the candidates elsewhere")
    parts.add_argument("--data", required=True, metavar="ROOT", help="labelled photos (a folder, shared://NAME or samples://NAME)")
    parts.add_argument("--reader", default="folder", help="layout reader of --data (default: folder)")
    parts.add_argument("--split", default="all", help="split of --data (default: all; train keeps your held-out photos out)")
    parts.add_argument("--source", required=True, help="label space of --data (e.g. ccp)")
    parts.add_argument("--domain", required=True, help="label space to write (e.g. lip): a head of --model")
    parts.add_argument("--model", default=None, help="semantic model: folder, checkpoint or Hub id (default: the starter)")
    parts.add_argument("--table", default=None, help="relabel table YAML (default: the built-in SOURCE_to_DOMAIN table)")
    parts.add_argument("--out", required=True, help="folder to write: images/ (copies) + labels/ (PNG), the folder layout")
    parts.add_argument("--overwrite", action="store_true", help="replace label files that already exist in --out")
    parts.add_argument("--device", default="cpu")
    parts.set_defaults(run=run_parts)


def run_pose(args) -> int:
    from ..api import expand_inputs
    from ..htcorrm.pseudo_label import pseudo_label_pose

    pseudo_label_pose(expand_inputs(args.inputs), args.out)
    return 0


def run_edge(args) -> int:
    from ..htcorrm.labels import write_edge_maps

    write_edge_maps(args.labels, args.out, connectivity=args.connectivity)
    return 0


def run_parts(args) -> int:
    import shutil
    from pathlib import Path

    from ..api import Parser
    from ..data.io import check_pair, load_label, read_image, write_label_png
    from ..engine.checkpoint import atomic_write
    from ..engine.run_dir import ensure_writable_dir
    from ..engine.semantic_recipe import read_split
    from ..errors import ConfigError
    from ..labels.relabel import RelabelTable

    table = RelabelTable.from_yaml(args.table) if args.table else RelabelTable.builtin(args.source, args.domain)
    if table.source.name != args.source or table.target.name != args.domain:
        raise ConfigError(f"{args.table}: the table maps {table.source.name} -> {table.target.name}, "
                          f"not {args.source} -> {args.domain}")
    records = read_split({"reader": args.reader, "root": args.data, "split": args.split}, args.source, Path("."))
    if not records:
        raise ConfigError(f"--data {args.data}: no labelled photos in split {args.split!r}")
    out = Path(args.out)
    ensure_writable_dir(out, "--out")  # an unwritable --out fails now, not after the first photo
    if not args.overwrite:
        clash = [r.stem for r in records if (out / "labels" / f"{r.stem}.png").exists()]
        if clash:
            raise ConfigError(f"{out / 'labels'} already holds {len(clash)} of these labels (first: {clash[0]}.png); "
                              "choose another --out or pass --overwrite")
    parser = None
    moved, skipped = 0, []
    for i, rec in enumerate(records):
        label, _ = load_label(rec, table.source.num_classes, table.source.ignore_index)
        image = read_image(rec.image)
        check_pair(image, label, (rec.image, rec.label))
        scores = None
        if not table.decided[label[label != table.source.ignore_index]].all():
            if parser is None:
                parser = Parser.from_pretrained(args.model, device=args.device)
                if args.domain not in parser.domains:
                    raise ConfigError(f"the model has no {args.domain!r} head (heads: {', '.join(parser.domains)})")
            scores = parser.predict_proba([image], domain=args.domain)[0].numpy()
            moved += 1
        target = table.relabel(label, scores)
        if not ((target != 0) & (target != table.target.ignore_index)).any():
            # nothing of the person is labelled in the target space (a CCP photo whose labels are only a bag):
            # no person to learn from, and the multi-person recipe refuses such labels
            skipped.append(rec.stem)
            continue
        dst = out / "images" / rec.image.name
        atomic_write(dst, lambda tmp, src=rec.image: shutil.copyfile(src, tmp))
        write_label_png(out / "labels" / f"{rec.stem}.png", target, table.target.palette)
        if (i + 1) % 50 == 0 or i + 1 == len(records):
            print(f"{i + 1}/{len(records)} photos relabelled ({moved} needed the model)", flush=True)
    print(f"wrote {len(records) - len(skipped)} {table.target.name} labels to {out / 'labels'} (images copied to "
          f"{out / 'images'})" + (f"; skipped {len(skipped)} with no {table.target.name} person pixel: "
                                  f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}" if skipped else ""))
    return 0
