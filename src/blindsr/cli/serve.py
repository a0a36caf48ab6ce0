"""``blindsr serve``: the web demo (upload, compare with bicubic, see the estimated degradation, download)."""

from __future__ import annotations

import argparse
import ipaddress
import math
import sys
from pathlib import Path
from typing import Literal

DEFAULT_MAX_JOB_MACS = 400e9  # blindsr.serve.app.DEFAULT_MAX_JOB_MACS, without importing FastAPI for --help

_DESCRIPTION = """Serve a small web page to try the models: upload an image, choose a model and an output scale,
compare the result with the bicubic-enlarged input on a slider, see the blur kernel and noise map the model
estimated, and download the result.

  blindsr serve                                   every zoo model with its weights installed; http://127.0.0.1:8000
  blindsr serve -m runs/export/model.safetensors  also offer (and preselect) a weights file
  blindsr serve --port 8080 --max-megapixels 1    smaller images only
  blindsr serve --device cuda --max-job-gmac 0    on a GPU: no cap on the work per image

The server binds 127.0.0.1 (this machine only) unless --host says otherwise; it has no authentication. It upscales
one image at a time: an upload that arrives during a job is answered "busy" (HTTP 429) and the page says so.
Limits, each answered with HTTP 413 and a message: --max-upload-mb (file size), --max-megapixels (image size, a
decompression bomb included) and --max-job-gmac (estimated work: input pixels x the model's multiply-accumulates
per pixel; the default 200 GMAC is about 0.17 MP with dmsr-x4, under a minute on a 2-core CPU). A job whose client
goes away (closed tab, dropped connection) is cancelled at the model's next tile or layer. Results keep the
input's kind as `blindsr upscale` does (8-bit): gray stays gray, and transparency is kept (alpha upscaled
separately with bicubic; the page shows it on a checkerboard).
Uploads and results live in one temporary directory, deleted at shutdown; the last --max-results results stay
downloadable. The page loads nothing from the internet. Needs the demo extra: pip install -e '.[demo]' in the
blindsr clone."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` sub-command to the main CLI.

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers()``.
    """
    p = sub.add_parser(
        "serve",
        help="web demo: upload an image, upscale it, compare, download",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "-m",
        "--model",
        action="append",
        default=[],
        metavar="NAME_OR_FILE",
        help="a model card name or a weights file to offer and preselect (repeatable; the first is the default); "
        "the zoo models with weights installed are always offered",
    )
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MB (10^6 bytes; default 20)")
    p.add_argument("--max-megapixels", type=float, default=4.0, help="largest input image in megapixels (default 4)")
    p.add_argument(
        "--max-job-gmac",
        type=float,
        default=None,
        metavar="GMAC",
        help=f"largest job in estimated work, 10^9 multiply-accumulates (default on the CPU "
        f"{DEFAULT_MAX_JOB_MACS / 1e9:g}: about 0.35 MP, e.g. 640x480, with dmsr-x4 at x4, about 80 s on a 2-core "
        "CPU; on a GPU: no cap); 0 for no cap",
    )
    p.add_argument("--max-results", type=int, default=8, help="finished results kept for download (default 8)")
    p.add_argument("--device", default="auto", help="torch device: auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--tile", default="auto", help="tile size in LR pixels, 'auto' (default) or 0 for none")
    p.add_argument(
        "--precision", choices=("fp32", "bf16", "fp16"), default="fp32", help="compute precision (default fp32)"
    )
    p.add_argument(
        "--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info", help="uvicorn logs"
    )
    p.set_defaults(func=run)


def _check_demo_extra() -> None:
    """Raise ImportError (with ``.name``) when fastapi, uvicorn or python-multipart is missing."""
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401

    try:
        import python_multipart  # noqa: F401
    except ImportError:
        import multipart  # noqa: F401  (python-multipart before 0.0.13)


def _tile(text: str) -> int | Literal["auto"] | None:
    from blindsr.cli.main import CLIError

    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise CLIError(f"--tile must be 'auto' or a whole number of pixels, got {text!r}") from None
    if value < 0:
        raise CLIError(f"--tile must be >= 0, got {value}")
    return value or None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Execute ``serve``: build the application and run it with uvicorn until interrupted.

    Args:
        args: parsed arguments.

    Returns:
        0 after a clean shutdown.
    """
    from blindsr.cli.main import CLIError

    try:
        _check_demo_extra()
    except ImportError as e:
        missing = e.name or "a dependency"
        raise CLIError(
            f"the web demo needs fastapi, uvicorn and python-multipart ({missing} is missing): "
            "pip install -e '.[demo]' in the blindsr clone"
        ) from e
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be in 0..65535, got {args.port}")
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-megapixels", args.max_megapixels)):
        if not (math.isfinite(value) and value > 0):
            raise CLIError(f"{flag} must be a positive number, got {value:g}")
    if args.max_results < 1:
        raise CLIError(f"--max-results must be >= 1, got {args.max_results}")
    if args.max_job_gmac is None:  # the cap protects a CPU; a GPU runs the 4 MP limit's largest job in seconds
        from blindsr.inference import resolve_device

        args.max_job_gmac = DEFAULT_MAX_JOB_MACS / 1e9 if resolve_device(args.device).type == "cpu" else 0.0
    if not (math.isfinite(args.max_job_gmac) and args.max_job_gmac >= 0):
        raise CLIError(f"--max-job-gmac must be >= 0 (0: no cap), got {args.max_job_gmac:g}")
    tile = _tile(args.tile)

    import uvicorn

    from blindsr.serve.app import create_app
    from blindsr.serve.jobs import default_upscaler_factory
    from blindsr.zoo import get_card, list_models

    offered = [card["name"] for card in list_models() if card["available"]]
    chosen = []
    for source in args.model:  # card aliases (dmsr-x4) become their card's name, so nothing is offered twice
        is_file = source.endswith(".safetensors") or "/" in source or Path(source).is_file()
        chosen.append(source if is_file else get_card(source).name)
    models = [*offered, *(c for c in chosen if c not in offered)]
    app = create_app(
        models=list(dict.fromkeys(models)),
        default_model=chosen[0] if chosen else None,
        max_upload_bytes=int(args.max_upload_mb * 1e6),
        max_pixels=int(args.max_megapixels * 1e6),
        max_results=args.max_results,
        max_job_macs=args.max_job_gmac * 1e9 or None,
        upscaler_factory=default_upscaler_factory(device=args.device, tile=tile, precision=args.precision),
    )
    names = ", ".join(entry.name for entry in app.state.models)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"blindsr serve: http://{shown}:{args.port}/ (models: {names}; Ctrl+C to stop)", flush=True)
    if not _is_loopback(args.host):
        print(
            f"blindsr serve: warning: --host {args.host} makes the demo reachable from other machines; "
            "it has no authentication",
            file=sys.stderr,
        )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
