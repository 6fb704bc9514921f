"""``humanparse serve [CHECKPOINT] [--multi CHECKPOINT] [--host 127.0.0.1] [--port 8000]``: web app + HTTP API."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="a local web app and HTTP API (POST /parse, GET /domains, GET /health, /docs)")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="model.safetensors (semantic or UniParser); default: the bundled starter model")
    p.add_argument("--multi", default=None, metavar="CHECKPOINT",
                   help="also offer multi-person parsing with this UniParser checkpoint")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto", help="cpu, cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=4, help="the most queued requests parsed in one call")
    p.add_argument("--long-side", type=int, default=None,
                   help="network input long side (default: the size stored in the checkpoint; 0 = native)")
    p.add_argument("--max-queue", type=int, default=64, help="requests waiting beyond this are refused (503)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..serve.app import run_server
    from ..serve.service import ParseService

    long_side = "auto" if args.long_side is None else (args.long_side or None)
    service = ParseService.from_checkpoints(args.checkpoint, multi=args.multi, device=args.device,
                                            long_side=long_side, batch_size=args.batch_size, max_queue=args.max_queue)
    print(f"humanparse serve: {service.name} ({', '.join(service.tasks)}) on http://{args.host}:{args.port}/ "
          f"(API docs: /docs)", file=sys.stderr)
    run_server(service, host=args.host, port=args.port)
    return 0
