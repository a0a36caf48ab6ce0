"""The web demo's HTTP layer (FastAPI): :func:`create_app`. ``blindsr serve`` runs it with uvicorn.

Endpoints:

``GET /``
    the page (:mod:`blindsr.serve.page`), with a Content-Security-Policy that allows nothing from elsewhere.
``GET /api/models``
    ``{"models": [{"name", "scale", "description"}], "default": name, "limits": {"max_upload_bytes",
    "max_pixels", "max_results", "max_job_macs"}}`` (``max_job_macs`` is null when there is no cap).
``POST /api/upscale``
    multipart form: ``file`` (the image), ``model`` (a name from ``/api/models``, or any name ``blindsr upscale -m``
    accepts for one of those models, such as the alias ``dmsr-x4``; default: the default model), ``outscale``
    (1 to the model's scale; default: the model's scale). Answers ``{"id", "model", "scale", "outscale",
    "input": {"width", "height"}, "output": {...}, "seconds", "tile", "estimate": {"kernel_size",
    "kernel_sigma", "kernel_sigma_xy", "noise_sigma"} | null, "download_name", "urls": {"result", "bicubic",
    "kernel", "noise", "download"}}``; ``kernel``/``noise`` URLs are null for models that estimate nothing.
``GET /api/result/{id}/{name}.png``
    one of the job's PNGs (``result``, ``bicubic``, ``kernel``, ``noise``); ``?download=1`` adds
    ``Content-Disposition: attachment``. The server keeps the last ``max_results`` jobs; older ids answer 404.

Errors are ``{"error": "<one line>"}`` with a 4xx status: 400 (not an image, empty, unknown model, bad scale,
not a multipart form), 404 (unknown result), 413 (more bytes than ``max_upload_bytes``; more pixels than
``max_pixels``, decompression bombs included; more estimated work than ``max_job_macs``), 429 (busy). Unexpected
failures answer 500 with the same shape.

**Work cap.** Before a job runs, its work is estimated (input pixels x the model's multiply-accumulates per pixel,
measured once per model, plus a charge per output pixel: :func:`blindsr.serve.jobs.estimate_job_macs`); above
``max_job_macs`` it is refused with 413 and a message giving the image size, the cap and the flag that raises it.

**Cancelled on disconnect.** While a job runs, the server listens for the client going away (a closed tab, a
dropped connection); the job then stops at the model's next tile or layer, its files are deleted and the lock is
released for the next upload.

**One job at a time.** A job holds a lock from decoding to the last PNG; an upload that arrives meanwhile is
answered at once with 429 and ``Retry-After``, rather than queued (a queue of multi-second CPU jobs behind a
browser spinner helps nobody; the page shows the message and the user retries). Requests for the page, the model
list and finished results are served while a job runs: the job itself runs in a worker thread.

**Files.** Every file lives in one temporary directory per server (:class:`~blindsr.serve.jobs.ResultStore`),
created by the first job and deleted at shutdown; uploads are parsed by Starlette, which keeps them in memory up to
1 MiB and in anonymous temporary files beyond.

FastAPI is imported inside :func:`create_app`, so this module imports without it.
"""

# No `from __future__ import annotations` here: FastAPI reads the handlers' annotations at run time, and the
# handlers are closures over names imported inside create_app, which string annotations could not resolve.

import asyncio
import contextlib
import logging
import math
import os
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blindsr.serve.jobs import (
    IMAGE_NAMES,
    JobCancelledError,
    JobError,
    JobResult,
    ModelEntry,
    ResultStore,
    UpscalerFactory,
    default_upscaler_factory,
    find_model,
    resolve_models,
    run_job,
)
from blindsr.serve.page import CONTENT_SECURITY_POLICY, PAGE_HTML

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI
    from starlette.types import Message

__all__ = [
    "DEFAULT_MAX_JOB_MACS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_RESULTS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "create_app",
]

DEFAULT_MAX_UPLOAD_BYTES = 20_000_000
"""20 MB per uploaded file."""
DEFAULT_MAX_PIXELS = 4_000_000
"""4 megapixels per input image."""
DEFAULT_MAX_RESULTS = 8
"""Finished jobs kept for download."""
DEFAULT_MAX_JOB_MACS = 400e9
"""400 GMAC of estimated work per job: about 0.35 MP (640x480 fits) with the shipped ``dmsr-x4`` at x4 (1.15 MMAC
per pixel), about 80 s on a 2-core CPU (extrapolated from a whole 406x406 job of 198 GMAC: 39 s). ``blindsr serve``
applies it on the CPU only; on a GPU it sets no cap."""

_FORM_OVERHEAD = 64 * 1024  # multipart boundaries, headers and the small fields, on top of the file itself
_RETRY_AFTER_S = "2"

log = logging.getLogger("blindsr.serve")


class _BodyTooLargeError(Exception):
    """The request body went past the upload limit while it was being read."""


def _megabytes(n: int) -> str:
    return f"{n / 1e6:g} MB"


def create_app(
    *,
    models: "Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]] | None" = None,
    default_model: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_results: int = DEFAULT_MAX_RESULTS,
    max_job_macs: float | None = DEFAULT_MAX_JOB_MACS,
    upscaler_factory: UpscalerFactory | None = None,
) -> "FastAPI":
    """Build the web demo's application.

    Args:
        models: what to offer: None for every zoo model whose weights are present; card names and release-file
            paths; or display name -> card name or path (see :func:`blindsr.serve.jobs.resolve_models`).
        default_model: the model selected on the page and used when a request names none: an offered name or
            source; None for the first.
        max_upload_bytes: largest accepted upload, in bytes (413 beyond).
        max_pixels: largest accepted image, in pixels H x W (413 beyond).
        max_results: finished jobs kept for download; older ones are deleted.
        max_job_macs: largest accepted job, in estimated multiply-accumulates (413 beyond); None for no cap.
        upscaler_factory: ``factory(source, outscale)`` returning an upscaler (tests inject tiny fakes); None for
            :func:`blindsr.serve.jobs.default_upscaler_factory` (:class:`blindsr.inference.Upscaler`).

    Returns:
        The FastAPI application; ``app.state.store`` is its :class:`~blindsr.serve.jobs.ResultStore` and
        ``app.state.models`` its model entries.

    Raises:
        ValueError: bad limits, no model to offer, or an unknown `default_model`.
        KeyError, FileNotFoundError, blindsr.zoo.WeightsError: a model that cannot be found (checked now).
    """
    from fastapi import FastAPI, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException

    if max_upload_bytes < 1 or max_pixels < 1:
        raise ValueError(f"limits must be positive, got max_upload_bytes={max_upload_bytes}, max_pixels={max_pixels}")
    if max_job_macs is not None and not (math.isfinite(max_job_macs) and max_job_macs > 0):
        raise ValueError(f"max_job_macs must be positive (or None for no cap), got {max_job_macs}")
    entries = resolve_models(models)
    if not entries:
        raise ValueError(
            "no model to serve: no zoo model has its weights installed (see `blindsr models`); "
            "pass a weights file with -m FILE.safetensors"
        )
    by_name = {entry.name: entry for entry in entries}
    default = entries[0]
    if default_model is not None:
        matches = [e for e in entries if default_model in (e.name, e.source) or str(Path(default_model)) == e.source]
        found = matches[0] if matches else find_model(entries, default_model)  # or an alias, like dmsr-x4
        if found is None:
            raise ValueError(f"default model {default_model!r} is not offered (offered: {', '.join(by_name)})")
        default = found
    factory = upscaler_factory if upscaler_factory is not None else default_upscaler_factory()
    store = ResultStore(max_results)
    busy = threading.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    app = FastAPI(title="blindsr demo", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.store = store
    app.state.models = entries

    def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))

    @app.exception_handler(HTTPException)
    async def json_http_error(request: Request, exc: HTTPException) -> Response:
        if isinstance(exc.detail, str):
            return error(exc.status_code, exc.detail, exc.headers)
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"}
        return HTMLResponse(PAGE_HTML, headers=headers)

    @app.get("/api/models")
    async def list_offered() -> dict[str, Any]:
        return {
            "models": [{"name": e.name, "scale": e.scale, "description": e.description} for e in entries],
            "default": default.name,
            "limits": {
                "max_upload_bytes": max_upload_bytes,
                "max_pixels": max_pixels,
                "max_results": max_results,
                "max_job_macs": max_job_macs,
            },
        }

    def too_large() -> JSONResponse:
        return error(413, f"the file is larger than this server's limit of {_megabytes(max_upload_bytes)}")

    def parse_outscale(text: str, entry: ModelEntry) -> float | None:
        if not text.strip():
            return None
        try:
            value = float(text)
        except ValueError:
            raise JobError(400, f"outscale must be a number, got {text[:20]!r}") from None
        if not (math.isfinite(value) and 1 <= value <= entry.scale):
            raise JobError(400, f"outscale must be between 1 and {entry.scale} for {entry.name}, got {text[:20]}")
        return None if value == entry.scale else value

    def describe(request: Request, job: JobResult) -> dict[str, Any]:
        def url(name: str) -> str | None:
            if name not in job.files:
                return None
            return request.url_for("result_file", result_id=job.id, name=name).path

        urls = {name: url(name) for name in IMAGE_NAMES}
        urls["download"] = f"{urls['result']}?download=1"
        return {"id": job.id, **job.summary, "download_name": job.download_name, "urls": urls}

    async def cancel_on_disconnect(request: Request, cancel: threading.Event) -> None:
        # the body has been read: the next message the server sends is http.disconnect, when the client goes away
        with contextlib.suppress(Exception):
            while (await request.receive())["type"] != "http.disconnect":
                pass
            cancel.set()

    @app.post("/api/upscale")
    async def upscale(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_upload_bytes + _FORM_OVERHEAD:
            return too_large()
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return error(400, "expected a multipart/form-data upload with a 'file' field")

        # count the bytes as they arrive, so a body without (or with a false) Content-Length is cut off too
        received = 0

        async def limited_receive() -> "Message":
            nonlocal received
            message = await request.receive()
            received += len(message.get("body", b""))
            if received > max_upload_bytes + _FORM_OVERHEAD:
                raise _BodyTooLargeError
            return message

        try:
            form = await Request(request.scope, limited_receive).form(max_files=1, max_fields=8)
        except _BodyTooLargeError:
            return too_large()
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                return error(400, "no file uploaded (expected a form field 'file' holding an image)")
            if upload.size is not None and upload.size > max_upload_bytes:
                return too_large()
            model_name = form.get("model") or default.name
            entry = find_model(entries, model_name) if isinstance(model_name, str) else None
            if entry is None:
                return error(400, f"unknown model {str(model_name)[:60]!r}; this server offers {', '.join(by_name)}")
            outscale_field = form.get("outscale")
            outscale = parse_outscale(outscale_field if isinstance(outscale_field, str) else "", entry)
            if not busy.acquire(blocking=False):
                return error(
                    429,
                    "busy: another image is being upscaled (one at a time); try again in a moment",
                    {"Retry-After": _RETRY_AFTER_S},
                )
            cancel = threading.Event()
            watcher = asyncio.ensure_future(cancel_on_disconnect(request, cancel))
            try:
                job = await run_in_threadpool(
                    run_job,
                    upload=upload.file,
                    filename=upload.filename or "upload",
                    entry=entry,
                    outscale=outscale,
                    factory=factory,
                    store=store,
                    max_pixels=max_pixels,
                    max_macs=max_job_macs,
                    cancel=cancel,
                )
            finally:
                watcher.cancel()
                busy.release()  # only once the job's thread is done: a cancelled job has stopped by now
        except JobCancelledError as e:
            log.info("job cancelled: the client went away")
            return error(e.status, e.message)  # nobody reads it
        except JobError as e:
            return error(e.status, e.message)
        except Exception as e:  # a failing model must not take the server down: report it on the page
            log.exception("upscaling failed")
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            return error(500, f"upscaling failed: {type(e).__name__}" + (f": {first}" if first else ""))
        finally:
            await form.close()
        log.info("%s: %s x%s in %.2f s", job.id, job.summary["model"], job.summary["outscale"], job.summary["seconds"])
        return JSONResponse(describe(request, job))

    @app.get("/api/result/{result_id}/{name}.png", name="result_file")
    async def result_file(result_id: str, name: str, download: bool = False) -> Response:
        job = store.get(result_id)
        path = job.files.get(name) if job is not None else None
        if job is None or path is None or not path.is_file():
            return error(404, f"no such result (this server keeps the last {max_results} results)")
        if download:
            return FileResponse(path, media_type="image/png", filename=job.download_name)
        return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})

    return app
