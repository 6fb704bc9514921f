"""A tiny random-weight checkpoint and a real server on a free loopback port (uvicorn in a thread)."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

import pytest
import torch

from _tiny_checkpoint import make_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("serve_ckpt") / "model.safetensors")


class LiveServer:
    def __init__(self, service, **app_kwargs):
        import uvicorn

        from humanparse.serve.app import create_app, free_port

        self.service = service
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(service, **app_kwargs), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(30)

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 120):
        """(status, content type, body) of one request; HTTP errors are returned, not raised."""
        req = urllib.request.Request(self.url + path, data=data, headers=headers or {},
                                     method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.headers.get("content-type", ""), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("content-type", ""), err.read()


@pytest.fixture(scope="module")
def live_server(tiny_checkpoint):
    from humanparse.serve.service import ParseService

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    service = ParseService.from_checkpoints(tiny_checkpoint, device="cpu", batch_size=4)
    with LiveServer(service, max_upload_bytes=2_000_000, max_pixels=4_000_000) as server:
        yield server
    torch.set_num_threads(threads)


def multipart(field: str, filename: str, data: bytes, content_type: str = "image/jpeg") -> tuple[bytes, dict]:
    boundary = "humanparse-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
