"""The HTTP side of ``humanparse serve``: FastAPI routes, the static page, and the uvicorn runner.

``POST /parse`` takes one image, as the raw request body (``curl --data-binary @photo.jpg``) or as the
``file`` field of a multipart form (``curl -F file=@photo.jpg``), and answers a P-mode PNG
(``format=png``) or JSON with the label map as PNG bytes (base64) and run-length code, plus the class
table. Every refusal is JSON ``{"error": "..."}`` with a 4xx/5xx status; the server goes on serving.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .encode import b64, class_table, label_png_bytes, rle_encode
from .service import ParseService, ServiceError

__all__ = ["create_app", "run_server", "free_port"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
_PARSE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": {"type": "string", "format": "binary"}}}},
        },
    },
    "responses": {"200": {"content": {"image/png": {}, "application/json": {}},
                          "description": "format=png: a P-mode PNG of class ids; format=json: see the docs"},
                  "400": {"description": "empty upload, unknown domain or task"},
                  "413": {"description": "upload too large"}, "415": {"description": "not an image"},
                  "503": {"description": "the queue is full"}},
}


def _check_pixels(data: bytes, name: str, max_pixels: int) -> None:
    """Refuse an image whose header declares too many pixels, before decoding it."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
    except Exception:  # undecodable: decode_image reports it
        return
    if w * h > max_pixels:
        raise ServiceError(413, f"{name}: image of {w}x{h} pixels is larger than this server accepts ({max_pixels} pixels)")


def _decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    from ..data.io import decode_image
    from ..errors import DataError

    if not data:
        raise ServiceError(400, f"{name}: empty upload (send the image file as the body or the 'file' form field)")
    _check_pixels(data, name, max_pixels)
    try:
        return decode_image(data, name)
    except DataError as exc:
        raise ServiceError(415, f"{exc} (send a JPEG, PNG, WebP, BMP or TIFF image)") from None


async def _read_upload(request: Request, max_bytes: int) -> tuple[bytes, str]:
    """The uploaded file's bytes and name. A body over ``max_bytes`` is read to its end but not kept (so the
    client, still sending, gets the 413 answer rather than a reset connection)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()  # file parts are spooled to disk past 1 MB
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ServiceError(400, "multipart upload without a 'file' field holding the image")
        name = upload.filename or "upload"
        size = upload.size if upload.size is not None else 0
        if size > max_bytes:
            raise ServiceError(413, f"{name}: upload of {size} bytes is larger than this server accepts ({max_bytes} bytes)")
        return await upload.read(), name
    name = request.headers.get("x-filename", "upload")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= max_bytes:
            chunks.append(chunk)
    if size > max_bytes:
        raise ServiceError(413, f"{name}: upload of {size} bytes is larger than this server accepts ({max_bytes} bytes)")
    return b"".join(chunks), name


def _semantic_json(label: np.ndarray, space, domain: str, names, palette) -> dict:
    h, w = label.shape
    return {"task": "semantic", "domain": domain, "width": w, "height": h,
            "classes": class_table(names, palette), "present": np.unique(label).astype(int).tolist(),
            "label_png": b64(label_png_bytes(label, palette)), "rle": rle_encode(label)}


def _multi_json(result: dict, space) -> dict:
    from ..labels import voc_colormap

    parts, ids = result["parts"], result["person_ids"]
    h, w = parts.shape
    ids8 = np.where(ids > 0, (ids - 1) % 255 + 1, 0).astype(np.uint8)
    return {"task": "multi", "domain": space.name, "width": w, "height": h,
            "classes": class_table(space.names, space.palette), "present": np.unique(parts).astype(int).tolist(),
            "label_png": b64(label_png_bytes(parts, space.palette)), "rle": rle_encode(parts),
            "person_ids_png": b64(label_png_bytes(ids8, voc_colormap(256))), "person_rle": rle_encode(ids8),
            "persons": result["persons"]}


def create_app(service: ParseService, *, max_upload_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS,
               timeout_s: float = 300.0) -> FastAPI:
    """The ASGI app over a started or unstarted ``service`` (started on app start-up, closed on shut-down)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        service.start()
        yield
        service.close()

    app = FastAPI(title="humanparse", version=_version(), lifespan=lifespan,
                  description="Human parsing of your photos: a label map per image (body parts and clothes).")

    @app.exception_handler(ServiceError)
    async def service_error(request, exc: ServiceError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_query(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"}, status_code=422)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", summary="Is the server up, and what can it do")
    async def health():
        return {"status": "ok", "model": service.name, "tasks": service.tasks,
                "requests_done": service.jobs_done, "batches_run": service.batches_run}

    @app.get("/domains", summary="Label domains (heads), their classes and colours, and the try-on layouts")
    async def domains():
        from ..labels.layout import get_layout, list_layouts

        semantic = [] if service.semantic is None else [
            {"name": d, "num_classes": s.num_classes, "classes": class_table(s.names, s.palette)}
            for d, s in service.semantic.label_spaces.items()]
        multi = None
        if service.multi is not None and service.multi.label_space is not None:
            s = service.multi.label_space
            multi = {"name": s.name, "num_classes": s.num_classes, "classes": class_table(s.names, s.palette)}
        layouts = []
        for n in list_layouts():
            lay = get_layout(n)
            layouts.append({"name": n, "sources": lay.sources, "not_derivable": lay.not_derivable,
                            "classes": class_table(lay.label_space.names, lay.label_space.palette)})
        return {"tasks": service.tasks, "semantic": semantic, "multi": multi, "layouts": layouts}

    @app.post("/parse", summary="Parse one image", openapi_extra=_PARSE_BODY)
    async def parse(request: Request,
                    task: str = Query("semantic", description="semantic or multi (multi-person)"),
                    domain: str | None = Query(None, description="label domain (head); needed when the model has several"),
                    format: str = Query("png", pattern="^(png|json)$", description="png: a P-mode PNG; json: see above"),
                    map_to: str | None = Query(None, description="a try-on layout for a semantic parse (GET /domains)")):
        domain = service.check(task, domain)
        table = None
        if map_to:
            if task != "semantic":
                raise ServiceError(400, "map_to works with task=semantic")
            from ..errors import HumanparseError
            from ..labels.layout import get_layout

            try:
                layout = get_layout(map_to)
                table = layout.table_from(service.label_space(task, domain))
            except HumanparseError as exc:
                raise ServiceError(400, str(exc)) from None
        data, name = await _read_upload(request, max_upload_bytes)
        image = await run_in_threadpool(_decode, data, name, max_pixels)
        future = service.submit(image, task, domain)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except asyncio.TimeoutError:
            raise ServiceError(503, f"{name}: no result within {timeout_s:.0f} s; the server is overloaded") from None
        space = service.label_space(task, domain)
        if task == "multi":
            if format == "png":
                return Response(label_png_bytes(result["parts"], space.palette), media_type="image/png")
            return await run_in_threadpool(_multi_json, result, space)
        label, names, palette = result["label"], space.names, space.palette
        if table is not None:
            label, names, palette = table[label], layout.label_space.names, layout.label_space.palette
        if format == "png":
            return Response(label_png_bytes(label, palette), media_type="image/png")
        return await run_in_threadpool(_semantic_json, label, space, map_to or domain, names, palette)

    return app


def _version() -> str:
    from .. import __version__

    return __version__


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_server(service: ParseService, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve until Ctrl-C (uvicorn, one process: the model is loaded once)."""
    import uvicorn

    uvicorn.run(create_app(service), host=host, port=port, log_level=log_level, workers=1)
