"""``humanparse serve``: a local web app and HTTP API in one process (FastAPI + uvicorn, a static page).

    from humanparse.serve import ParseService, create_app
    service = ParseService.from_checkpoints("model.safetensors")      # loads the model(s) once
    app = create_app(service)                                          # any ASGI server runs it

- ``service``: the model(s) and the one worker thread that runs them; requests queue and are batched.
- ``encode``: label maps as P-mode PNG bytes, run-length codes and class tables.
- ``app``: the routes (``POST /parse``, ``GET /domains``, ``GET /health``, ``/docs``) and the page.
"""

from .service import ParseService, ServiceError

__all__ = ["ParseService", "ServiceError", "create_app", "run_server"]


def __getattr__(name: str):
    if name in ("create_app", "run_server"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'humanparse.serve' has no attribute {name!r}")
