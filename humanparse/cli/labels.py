"""``humanparse labels list`` / ``humanparse labels show NAME [--json]``."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("labels", help="list and show label domains")
    g = p.add_subparsers(dest="labels_command", metavar="ACTION")
    g.required = True
    lst = g.add_parser("list", help="the built-in label domains")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(run=run_list)
    show = g.add_parser("show", help="one label domain: names, palette, flip pairs, adjacency")
    show.add_argument("name", help="a built-in name or a path to a label-space YAML file")
    show.add_argument("--json", action="store_true", help="print names, palette, flip_pairs and adjacency as JSON")
    show.set_defaults(run=run_show)


def run_list(args) -> int:
    from ..labels import get_label_space, list_label_spaces

    names = list_label_spaces()
    if args.json:
        print(json.dumps({n: get_label_space(n).num_classes for n in names}))
        return 0
    for n in names:
        ls = get_label_space(n)
        print(f"{n:10s} {ls.num_classes:3d} classes")
    return 0


def run_show(args) -> int:
    from ..labels import get_label_space

    ls = get_label_space(args.name)
    d = ls.to_dict()
    if args.json:
        out = {"name": ls.name, "names": list(ls.names), "palette": ls.palette.tolist(),
               "flip_pairs": [list(p) for p in ls.flip_pairs], "adjacency": ls.adjacency.astype(int).tolist()}
        if d.get("mappings"):
            out["mappings"] = d["mappings"]
        print(json.dumps(out))
        return 0
    print(f"{ls.name}: {ls.num_classes} classes")
    for i, (n, c) in enumerate(zip(ls.names, ls.palette.tolist())):
        print(f"  {i:3d} {n:28s} rgb{tuple(c)}")
    print("flip pairs: " + (", ".join(f"{a}<->{b}" for a, b in ls.flip_pairs) or "none"))
    print(f"adjacency: {int(ls.adjacency.sum() - ls.num_classes) // 2} undirected edges"
          + ("" if ls.adjacency_is_prior else " (none declared: all-ones fallback)"))
    return 0
