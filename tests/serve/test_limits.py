"""The web demo's limits: cancel on disconnect, the work cap, decompression bombs, and the model names it accepts.

The HTTP tests go through the server (FastAPI's TestClient, or uvicorn on a free port for a real disconnect) with
fake upscalers that honour the same contracts as :class:`blindsr.inference.Upscaler`.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402

with warnings.catch_warnings():  # starlette 1.x asks for httpx2 instead of httpx; either works here
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient  # noqa: E402

import blindsr.zoo  # noqa: E402
from blindsr.cli.main import main  # noqa: E402
from blindsr.serve import create_app  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PngWriter = Callable[..., Path]  # the write_png fixture of conftest.py


@dataclass
class FakeResult:
    image: np.ndarray
    kernel: np.ndarray | None = None
    noise: np.ndarray | None = None
    tile: Any = None


def _nearest_x2(image: np.ndarray) -> FakeResult:
    return FakeResult(np.repeat(np.repeat(image, 2, axis=0), 2, axis=1))


class SlowUpscaler:
    """x2 nearest-neighbour after `tiles` steps of `delay` seconds, honouring ``cancel`` before each step."""

    scale = 2

    def __init__(self, tiles: int, delay: float = 0.01) -> None:
        self.tiles, self.delay = tiles, delay
        self.started, self.stopped = threading.Event(), threading.Event()
        self.done = 0
        self.cancelled = False

    def upscale_with_degradation(self, image: np.ndarray, *, cancel: Any = None) -> FakeResult:
        self.started.set()
        try:
            check = getattr(cancel, "is_set", cancel)  # an Event or a callable, as Upscaler takes
            for _ in range(self.tiles):
                if check is not None and check():
                    self.cancelled = True
                    from blindsr.inference import UpscaleCancelledError

                    raise UpscaleCancelledError("cancelled")
                time.sleep(self.delay)
                self.done += 1
            return _nearest_x2(image)
        finally:
            self.stopped.set()


class CostlyUpscaler:
    """Declares a huge cost per pixel (the attribute the server reads before measuring a real model)."""

    scale = 2
    macs_per_pixel = 1e9

    def __init__(self) -> None:
        self.calls = 0

    def upscale_with_degradation(self, image: np.ndarray) -> FakeResult:
        self.calls += 1
        return _nearest_x2(image)


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty temporary directory for the server's files."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _upload(client: TestClient | httpx.Client, path: Path, **fields: str) -> Any:
    with path.open("rb") as fh:
        return client.post("/api/upscale", files={"file": (path.name, fh, "image/png")}, data=fields)


def _multipart(name: str, data: bytes, boundary: str = "blindsr-test-boundary") -> tuple[bytes, str]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@contextlib.contextmanager
def _serving(app: FastAPI) -> Iterator[int]:
    """Run `app` with uvicorn on a free loopback port in a thread; yield the port."""
    uvicorn = pytest.importorskip("uvicorn")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=20)


# --------------------------------------------------------------------------------------------------------------
# cancel on disconnect


def test_a_client_that_goes_away_cancels_its_job(
    tiny_release: Path, sandbox: Path, tmp_path: Path, write_png: PngWriter
) -> None:
    slow = SlowUpscaler(tiles=400)  # 4 s if nobody stops it
    made: list[SlowUpscaler] = []

    def factory(source: str, outscale: float | None) -> SlowUpscaler:
        made.append(slow if not made else SlowUpscaler(tiles=1))
        return made[-1]

    app = create_app(models={"tiny": tiny_release}, upscaler_factory=factory)
    image = write_png(tmp_path / "a.png", 8, 8)
    body, content_type = _multipart("a.png", image.read_bytes())
    with _serving(app) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(
                f"POST /api/upscale HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            assert slow.started.wait(timeout=20), "the job never started"
        # the client is gone: the job stops at its next step rather than running to the end
        assert slow.stopped.wait(timeout=20)
        assert slow.cancelled and slow.done < 100, f"the job ran {slow.done} of {slow.tiles} steps"

        # its lock is released and nothing of it is kept: the next upload runs
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            for _ in range(200):
                response = _upload(client, image)
                if response.status_code != 429:  # the cancelled job's thread may still be unwinding
                    break
                time.sleep(0.01)
            assert response.status_code == 200, response.text
        store = app.state.store
        assert len(store) == 1 and store.root is not None
        assert [p.name for p in store.root.iterdir()] == [response.json()["id"]]


def test_upscaler_checks_cancel_before_each_tile(tiny_release: Path) -> None:
    from blindsr.inference import UpscaleCancelledError, Upscaler

    upscaler = Upscaler(str(tiny_release), tile=8, tile_pad=0, device="cpu")
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)  # 2 x 2 tiles
    calls = 0

    def stop_after_two() -> bool:  # the estimate, then the first tile; the second check stops it
        nonlocal calls
        calls += 1
        return calls > 2

    with pytest.raises(UpscaleCancelledError, match="upscaling cancelled"):
        upscaler.upscale_with_degradation(image, cancel=stop_after_two)
    assert calls == 3

    already = threading.Event()
    already.set()
    with pytest.raises(UpscaleCancelledError):
        upscaler.upscale_with_degradation(image, cancel=already)

    whole = upscaler.upscale_with_degradation(image)
    watched = upscaler.upscale_with_degradation(image, cancel=threading.Event())  # never set
    assert np.array_equal(whole.image, watched.image)
    with pytest.raises(TypeError, match="cancel must be a threading.Event or a callable"):
        upscaler.upscale_with_degradation(image, cancel=True)  # type: ignore[arg-type]


def test_a_cancelled_job_stops_inside_a_single_tile(tiny_release: Path, sandbox: Path, write_png: PngWriter) -> None:
    """A job in one piece (no tile boundary to stop at) stops at the network's next layer."""
    import io

    import torch

    from blindsr.serve.jobs import JobCancelledError, ResultStore, default_upscaler_factory, resolve_models, run_job

    factory = default_upscaler_factory(device="cpu", tile=None)
    upscaler = factory(str(tiny_release), None)
    network = upscaler.model.model  # type: ignore[attr-defined]
    cancel = threading.Event()
    ran: list[str] = []
    leaves = [(name, m) for name, m in network.named_modules() if not list(m.children())]

    def record(name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: Any, output: Any) -> None:
            ran.append(name)
            if len(ran) == 3:
                cancel.set()  # as if the client went away during the third layer

        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in leaves]
    store = ResultStore()
    try:
        with pytest.raises(JobCancelledError) as caught:
            run_job(
                upload=io.BytesIO(write_png(sandbox.parent / "a.png", 16, 16).read_bytes()), filename="a.png",
                entry=resolve_models([tiny_release])[0], outscale=None, factory=factory, store=store,
                max_pixels=10_000, cancel=cancel,
            )  # fmt: skip
    finally:
        for handle in handles:
            handle.remove()
    assert caught.value.status == 499
    assert len(ran) == 3, f"{len(ran)} layers ran after the cancel"
    assert len(store) == 0 and store.root is not None and list(store.root.iterdir()) == []
    store.close()


# --------------------------------------------------------------------------------------------------------------
# the work cap


def test_a_job_over_the_work_cap_is_413(
    tiny_release: Path, sandbox: Path, tmp_path: Path, write_png: PngWriter
) -> None:
    costly = CostlyUpscaler()
    app = create_app(
        models={"tiny": tiny_release}, upscaler_factory=lambda source, outscale: costly, max_job_macs=200e9
    )
    with TestClient(app) as client:
        response = _upload(client, write_png(tmp_path / "photo.png", 16, 20))
        assert response.status_code == 413, response.text
        message = response.json()["error"]
        assert message.startswith("photo.png is 20x16 = 0.00 MP: about 320 GMAC of work with tiny at x2")
        assert "over this server's cap of 200 GMAC per job" in message
        assert "`blindsr serve --max-job-gmac N`" in message and "\n" not in message
        assert costly.calls == 0  # refused before any work


def test_the_work_cap_measures_a_real_model_and_the_flag_raises_it(
    tiny_release: Path, sandbox: Path, tmp_path: Path, write_png: PngWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    uvicorn = pytest.importorskip("uvicorn")
    apps: list[FastAPI] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: apps.append(app))
    small, large = write_png(tmp_path / "small.png", 8, 8), write_png(tmp_path / "large.png", 24, 24)
    for gmac, expected in (("0.05", 413), ("1", 200), ("0", 200)):  # 0: no cap
        assert main(["serve", "-m", str(tiny_release), "--tile", "0", "--max-job-gmac", gmac]) == 0
        with TestClient(apps[-1]) as client:
            assert _upload(client, small).status_code == 200
            response = _upload(client, large)
            assert response.status_code == expected, response.text
            if expected == 413:
                message = response.json()["error"]
                expected_start = r"large\.png is 24x24 = 0\.00 MP: about 0\.1\d\d GMAC of work with tiny-x2 at x2,"
                assert re.match(expected_start, message), message
                assert "cap of 0.05 GMAC per job (about 249 pixels with this model)" in message


def test_cost_estimates(tiny_release: Path) -> None:
    from blindsr.cli.serve import DEFAULT_MAX_JOB_MACS as CLI_DEFAULT
    from blindsr.serve import DEFAULT_MAX_JOB_MACS
    from blindsr.serve.jobs import OUTPUT_PIXEL_MACS, default_upscaler_factory, estimate_job_macs, macs_per_pixel

    assert CLI_DEFAULT == DEFAULT_MAX_JOB_MACS
    upscaler = default_upscaler_factory(device="cpu", tile=None)(str(tiny_release), None)
    per_pixel = macs_per_pixel(upscaler)
    assert 150_000 < per_pixel < 250_000  # the 8-feature DMSR: its kernel extractor and body at 3x3
    assert macs_per_pixel(upscaler) == per_pixel  # measured once
    assert macs_per_pixel(CostlyUpscaler()) == 1e9  # declared
    assert macs_per_pixel(SlowUpscaler(tiles=1)) == 0  # neither: only the output is charged
    assert estimate_job_macs(0, 10, 10, 2.0) == 400 * OUTPUT_PIXEL_MACS
    with pytest.raises(ValueError, match="max_job_macs must be positive"):
        create_app(models=[tiny_release], max_job_macs=0)
    assert main(["serve", "-m", str(tiny_release), "--max-job-gmac", "-1"]) == 2


# --------------------------------------------------------------------------------------------------------------
# decompression bombs


def _png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header for a `width` x `height` RGB image, with (almost) no pixel data: a few dozen bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _png_with_text(megabytes: int) -> bytes:
    """A valid 8 x 8 PNG whose zTXt comment decompresses to `megabytes` MB (a text-chunk bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    text = b"Comment\0\0" + zlib.compress(b"a" * (megabytes * 1_000_000), 9)
    pixels = zlib.compress(b"".join(b"\0" + bytes(24) for _ in range(8)))
    return PNG_SIGNATURE + b"".join(
        chunk(kind, data) for kind, data in ((b"IHDR", header), (b"zTXt", text), (b"IDAT", pixels), (b"IEND", b""))
    )


def test_a_decompression_bomb_is_413(tiny_release: Path, sandbox: Path) -> None:
    bomb = _png_declaring(20_000, 20_000)
    assert len(bomb) < 100
    with TestClient(create_app(models={"tiny": tiny_release})) as client:
        response = client.post("/api/upscale", files={"file": ("bomb.png", bomb, "image/png")})
        assert response.status_code == 413, response.text
        assert response.json() == {
            "error": "bomb.png declares 400 MP (a possible decompression bomb); this server accepts at most 4 MP "
            "(4,000,000 pixels)"
        }

        text_bomb = _png_with_text(4)  # Pillow reads at most 1 MB of a text chunk
        assert len(text_bomb) < 10_000
        response = client.post("/api/upscale", files={"file": ("text.png", text_bomb, "image/png")})
        assert response.status_code == 413, response.text
        assert response.json()["error"].startswith("text.png holds metadata that decompresses to more than")
        harmless = client.post("/api/upscale", files={"file": ("ok.png", _png_with_text(0), "image/png")})
        assert harmless.status_code == 200, harmless.text


# --------------------------------------------------------------------------------------------------------------
# model names


def test_the_names_the_cli_accepts_select_models(
    tiny_release: Path, sandbox: Path, tmp_path: Path, write_png: PngWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blindsr.zoo, "resolve_weights", lambda card: tiny_release)  # the cards' files need not exist
    app = create_app(
        models=["dmsr-x4.lite", "mrda-x4.aniso-noise-lite"],
        upscaler_factory=lambda source, outscale: SlowUpscaler(tiles=1),
    )
    image = write_png(tmp_path / "a.png", 8, 8)
    with TestClient(app) as client:
        for sent, chosen in [
            ("dmsr-x4", "dmsr-x4.lite"),  # the name without its tag, as `blindsr upscale -m dmsr-x4`
            ("dmsr-x4.lite", "dmsr-x4.lite"),
            ("mrda-x4-aniso", "mrda-x4.aniso-noise-lite"),  # an extra alias (MODEL_ALIASES)
        ]:
            response = _upload(client, image, model=sent)
            assert response.status_code == 200, (sent, response.text)
            assert response.json()["model"] == chosen
        for unknown in ("dmsr-x3", "dmsr-x3.lite", str(tiny_release)):  # not offered, or a path: never loaded
            response = _upload(client, image, model=unknown)
            assert response.status_code == 400
            assert response.json()["error"].startswith("unknown model")
    assert create_app(models=["dmsr-x4.lite"], default_model="dmsr-x4").state.models[0].name == "dmsr-x4.lite"


def test_the_cli_default_cap_is_the_library_default() -> None:
    from blindsr.cli import serve as cli_serve
    from blindsr.serve.app import DEFAULT_MAX_JOB_MACS

    assert cli_serve.DEFAULT_MAX_JOB_MACS == DEFAULT_MAX_JOB_MACS


@pytest.mark.parametrize(
    ("flag", "value"), [("--max-megapixels", "inf"), ("--max-upload-mb", "nan"), ("--max-megapixels", "0")]
)
def test_serve_limits_are_finite_positive_numbers(
    tiny_release: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    assert main(["serve", "-m", str(tiny_release), flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{flag} must be a positive number" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_gray_upload_gives_a_gray_result(
    tiny_release: Path, sandbox: Path, tmp_path: Path, write_png: PngWriter
) -> None:
    from PIL import Image

    gray = tmp_path / "gray.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 20), dtype=np.uint8)).save(gray)
    app = create_app(models={"tiny": tiny_release}, upscaler_factory=lambda source, outscale: SlowUpscaler(tiles=1))
    with TestClient(app) as client:
        response = _upload(client, gray)
        assert response.status_code == 200, response.text
        for name in ("result", "bicubic"):
            png = client.get(response.json()["urls"][name])
            assert png.status_code == 200
            out = tmp_path / f"{name}.png"
            out.write_bytes(png.content)
            assert Image.open(out).mode == "L"
