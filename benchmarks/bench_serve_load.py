"""API load test (not a test of the suite): N requests from C concurrent clients against ``humanparse serve``
on loopback, with one malformed request in the middle. Reports p50 / p95 latency, requests/s, the errors,
and checks that every good answer is the label map of the first one (same photo) and that the malformed
request got a 4xx without disturbing the others. JSON to stdout (and --out).

    python benchmarks/bench_serve_load.py                       # the starter model, 200 requests, 8 clients
    python benchmarks/bench_serve_load.py --checkpoint runs/x/model.safetensors --threads 2 --out benchmarks/results/serve_load.json

The server runs as its own process (``python -m humanparse serve``, listening on 127.0.0.1 only), so the
client threads do not share its interpreter. Everything is bounded: per-request timeout, total deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, data: bytes, timeout: float) -> tuple[int, bytes, float]:
    start = time.perf_counter()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "image/jpeg"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body, status = resp.read(), resp.status
    except urllib.error.HTTPError as err:
        body, status = err.read(), err.code
    except OSError as err:  # refused, reset, timed out: counted as an error, the run goes on
        body, status = str(err).encode(), 0
    return status, body, time.perf_counter() - start


def start_server(args, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "humanparse", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--batch-size", str(args.batch_size), "--device", "cpu", "--max-queue", str(max(64, args.clients * 4))]
    if args.checkpoint:
        cmd.insert(4, args.checkpoint)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + args.startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the server did not answer /health within {args.startup_timeout} s")


def main() -> None:
    from humanparse.data.sample_data import sample_data_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="model to serve (default: the bundled starter model)")
    ap.add_argument("--domain", default=None, help="head to ask for (default: the model's only/first head)")
    ap.add_argument("--image", default=None, help="photo to send (default: the first LIP sample photo)")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    ap.add_argument("--deadline", type=float, default=1800.0, help="whole run, seconds")
    ap.add_argument("--startup-timeout", type=float, default=300.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    image = Path(args.image) if args.image else sorted((sample_data_root() / "lip" / "images").iterdir())[0]
    data = image.read_bytes()
    port = free_port()
    proc = start_server(args, port)
    try:
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/domains", timeout=30) as resp:
            domains = json.loads(resp.read())
        domain = args.domain or domains["semantic"][0]["name"]
        url = f"{base}/parse?domain={domain}"
        status, reference, _ = post(url, data, args.timeout)  # warm-up, and the answer every request must give
        if status != 200:
            raise SystemExit(f"warm-up request failed ({status}): {reference[:300]!r}")
        bad_at = args.requests // 2
        payloads = [b"not an image at all" if i == bad_at else data for i in range(args.requests)]
        start = time.perf_counter()
        deadline = time.monotonic() + args.deadline
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [pool.submit(post, url, p, args.timeout) for p in payloads]
            results = []
            for f in futures:
                left = max(1.0, deadline - time.monotonic())
                results.append(f.result(timeout=left))
        wall = time.perf_counter() - start
        with urllib.request.urlopen(base + "/health", timeout=30) as resp:
            health = json.loads(resp.read())
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

    good = [r for i, r in enumerate(results) if i != bad_at]
    latencies = np.array([r[2] for r in good])
    errors = [r[0] for r in good if r[0] != 200]
    mismatched = sum(1 for r in good if r[0] == 200 and r[1] != reference)
    out = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "model": args.checkpoint or "starter", "domain": domain, "image": image.name,
        "requests": args.requests, "clients": args.clients, "server_threads": args.threads,
        "batch_size": args.batch_size,
        "p50_s": float(np.percentile(latencies, 50)), "p95_s": float(np.percentile(latencies, 95)),
        "requests_per_s": args.requests / wall, "wall_s": wall,
        "errors": len(errors), "wrong_answers": mismatched,
        "malformed_status": results[bad_at][0],
        "model_calls": health.get("batches_run"), "requests_served": health.get("requests_done"),
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    if errors or mismatched or not 400 <= out["malformed_status"] < 500:
        raise SystemExit(f"load test failed: {len(errors)} errors, {mismatched} wrong answers, "
                         f"malformed request answered {out['malformed_status']}")


if __name__ == "__main__":
    main()
