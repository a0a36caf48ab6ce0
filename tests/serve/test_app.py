"""The web demo's HTTP API through FastAPI's TestClient, with a tiny random DMSR release file."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi import FastAPI  # noqa: E402

with warnings.catch_warnings():  # starlette 1.x asks for httpx2 instead of httpx; either works here
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient  # noqa: E402

from blindsr.cli.main import main  # noqa: E402
from blindsr.data.images import read_image_uint8, write_image  # noqa: E402
from blindsr.serve import create_app  # noqa: E402
from blindsr.serve.jobs import summarize_degradation  # noqa: E402
from blindsr.serve.page import PAGE_HTML  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PngWriter = Callable[..., Path]  # the write_png fixture of conftest.py


@dataclass
class Sandbox:
    """The process's temporary directory and working directory, both fresh and empty."""

    tmp: Path
    cwd: Path

    def assert_clean(self) -> None:
        assert sorted(self.tmp.iterdir()) == [], "files left in the temporary directory"
        assert sorted(self.cwd.iterdir()) == [], "files written to the working directory"


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Point tempfile at an empty folder and chdir to another, so anything written can be seen."""
    box = Sandbox(tmp_path / "tmp", tmp_path / "cwd")
    box.tmp.mkdir()
    box.cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(box.tmp))
    monkeypatch.chdir(box.cwd)
    return box


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    return folder


@pytest.fixture
def client(tiny_release: Path, sandbox: Sandbox) -> Iterator[TestClient]:
    app = create_app(models={"tiny": tiny_release})
    with TestClient(app) as c:
        yield c
    sandbox.assert_clean()


def _upload(client: TestClient, path: Path, **fields: str) -> Any:
    with path.open("rb") as fh:
        return client.post("/api/upscale", files={"file": (path.name, fh, "image/png")}, data=fields)


def _decode_png(data: bytes, folder: Path) -> np.ndarray:
    assert data.startswith(PNG_SIGNATURE)
    path = folder / "decoded.png"
    path.write_bytes(data)
    return read_image_uint8(path).permute(1, 2, 0).numpy()


# --------------------------------------------------------------------------------------------------------------
# fakes for the upscaler (behind create_app's upscaler_factory)


@dataclass
class FakeResult:
    image: np.ndarray
    kernel: np.ndarray | None = None
    noise: np.ndarray | None = None
    tile: Any = None


class FakeUpscaler:
    """x2 nearest-neighbour; can wait on a gate (to hold the job lock) or fail."""

    scale = 2

    def __init__(self, *, started: threading.Event, gate: threading.Event | None, fail: bool) -> None:
        self.started, self.gate, self.fail = started, gate, fail

    def upscale_with_degradation(self, image: np.ndarray) -> FakeResult:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=20), "the test never opened the gate"
        if self.fail:
            raise RuntimeError("boom\nsecond line")
        return FakeResult(np.repeat(np.repeat(image, 2, axis=0), 2, axis=1))


def _fake_app(
    release: Path, *, gate: threading.Event | None = None, fail: bool = False, **kwargs: Any
) -> tuple[FastAPI, threading.Event]:
    started = threading.Event()

    def factory(source: str, outscale: float | None) -> FakeUpscaler:
        return FakeUpscaler(started=started, gate=gate, fail=fail)

    return create_app(models={"tiny": release}, upscaler_factory=factory, **kwargs), started


# --------------------------------------------------------------------------------------------------------------
# the page and the model list


def test_page_is_served_and_self_contained(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    for element in ('id="file"', 'id="model"', 'id="outscale"', 'id="run"', 'id="slider"', 'id="download"'):
        assert element in response.text
    # no CDN, no font service, no external script: nothing absolute at all
    lowered = PAGE_HTML.lower()
    assert "http:" not in lowered and "https:" not in lowered and '"//' not in lowered and "'//" not in lowered
    assert "<link" not in lowered and "<script src" not in lowered and "@import" not in lowered


def test_models_endpoint(client: TestClient) -> None:
    data = client.get("/api/models").json()
    assert data["models"] == [
        {"name": "tiny", "scale": 2, "description": "weights file tiny-x2.safetensors"},
    ]
    assert data["default"] == "tiny"
    assert data["limits"] == {
        "max_upload_bytes": 20_000_000,
        "max_pixels": 4_000_000,
        "max_results": 8,
        "max_job_macs": 400e9,
    }


def test_unknown_routes_answer_json(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


# --------------------------------------------------------------------------------------------------------------
# upscaling


def test_upload_upscales_and_serves_every_image(client: TestClient, inputs: Path, write_png: PngWriter) -> None:
    image = write_png(inputs / "photo of me.png", 12, 20)
    response = _upload(client, image)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["model"] == "tiny" and data["scale"] == 2 and data["outscale"] == 2.0
    assert data["input"] == {"width": 20, "height": 12}
    assert data["output"] == {"width": 40, "height": 24}
    assert data["seconds"] >= 0
    assert data["download_name"] == "photo_of_me_x2.png"
    estimate = data["estimate"]
    assert estimate["kernel_size"] == 15 and 0 < estimate["kernel_sigma"] < 15
    assert estimate["noise_sigma"] >= 0

    urls = data["urls"]
    assert set(urls) == {"result", "bicubic", "kernel", "noise", "download"}
    result = _decode_png(client.get(urls["result"]).content, inputs)
    bicubic = _decode_png(client.get(urls["bicubic"]).content, inputs)
    assert result.shape == bicubic.shape == (24, 40, 3)
    # the bicubic preview is the input enlarged: close to it on average, unlike an unrelated image
    small = read_image_uint8(image).permute(1, 2, 0).numpy().astype(float)
    assert abs(bicubic.astype(float)[::2, ::2].mean() - small.mean()) < 3
    kernel = _decode_png(client.get(urls["kernel"]).content, inputs)
    assert kernel.shape[2] == 3 and min(kernel.shape[:2]) >= 64
    noise = client.get(urls["noise"])
    assert noise.status_code == 200 and noise.content.startswith(PNG_SIGNATURE)

    inline = client.get(urls["result"])
    assert "content-disposition" not in inline.headers
    download = client.get(urls["download"])
    assert download.content == inline.content
    assert download.headers["content-disposition"] == 'attachment; filename="photo_of_me_x2.png"'


def test_outscale_below_native(client: TestClient, inputs: Path, write_png: PngWriter) -> None:
    response = _upload(client, write_png(inputs / "a.png", 12, 20), model="tiny", outscale="1")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["outscale"] == 1.0 and data["output"] == {"width": 20, "height": 12}
    assert _decode_png(client.get(data["urls"]["result"]).content, inputs).shape == (12, 20, 3)


def _rgba_upload(path: Path) -> np.ndarray:
    """A 16x20 RGBA PNG: left half fully transparent over a hidden bright red, right half opaque texture."""
    rng = np.random.default_rng(3)
    pixels = np.zeros((16, 20, 4), np.uint8)
    pixels[:, :, :3] = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
    pixels[:, :10, :3] = (255, 0, 0)  # the hidden colour: must not show where the input is transparent
    pixels[:, 10:, 3] = 255
    write_image(path, pixels)
    return pixels


def test_a_transparent_upload_keeps_its_alpha(
    client: TestClient, tiny_release: Path, inputs: Path, tmp_path: Path
) -> None:
    from PIL import Image

    rgba = inputs / "rgba.png"
    _rgba_upload(rgba)
    response = _upload(client, rgba)
    assert response.status_code == 200, response.text
    assert response.json()["output"] == {"width": 40, "height": 32}
    for name in ("result", "bicubic"):
        out = tmp_path / f"{name}.png"
        out.write_bytes(client.get(response.json()["urls"][name]).content)
        with Image.open(out) as img:
            assert img.mode == "RGBA"
            pixels = np.asarray(img)
        assert pixels.shape == (32, 40, 4)
        assert (pixels[:, :16, 3] == 0).all(), "transparent input pixels must stay transparent"
        assert (pixels[:, 24:, 3] == 255).all(), "opaque input pixels must stay opaque"
    download = client.get(response.json()["urls"]["download"]).content
    assert download == client.get(response.json()["urls"]["result"]).content

    # the same pixels as `blindsr upscale` writes for that file (colour through the model, alpha bicubic)
    assert main(["upscale", str(rgba), "-m", str(tiny_release), "-o", str(tmp_path / "cli.png"), "-q"]) == 0
    with Image.open(tmp_path / "cli.png") as cli, Image.open(tmp_path / "result.png") as served:
        assert cli.mode == "RGBA" and np.array_equal(np.asarray(cli), np.asarray(served))


def test_gray_with_alpha_stays_gray_with_alpha(client: TestClient, inputs: Path, tmp_path: Path) -> None:
    from PIL import Image

    la = inputs / "la.png"
    pixels = np.full((8, 10, 2), 100, np.uint8)
    pixels[:, :5, 1] = 0
    pixels[:, 5:, 1] = 255
    Image.fromarray(pixels, mode="LA").save(la)
    response = _upload(client, la)
    assert response.status_code == 200, response.text
    out = tmp_path / "result.png"
    out.write_bytes(client.get(response.json()["urls"]["result"]).content)
    with Image.open(out) as img:
        assert img.mode == "LA" and img.size == (20, 16)
        assert (np.asarray(img)[:, :8, 1] == 0).all()


def test_an_opaque_upload_still_gives_rgb(client: TestClient, inputs: Path, write_png: PngWriter) -> None:
    from PIL import Image

    response = _upload(client, write_png(inputs / "rgb.png", 8, 10))
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(client.get(response.json()["urls"]["result"]).content)) as img:
        assert img.mode == "RGB"


def test_the_page_shows_results_on_a_checkerboard() -> None:
    rule = re.search(r"\.compare img \{([^}]*)\}", PAGE_HTML)  # both compared images, so the slider hides nothing
    assert rule is not None and "repeating-conic-gradient" in rule.group(1) and "background-size" in rule.group(1)
    assert "Transparency is dropped" not in PAGE_HTML


# --------------------------------------------------------------------------------------------------------------
# refusals: one-line JSON errors


def test_too_large_upload_is_413(tiny_release: Path, sandbox: Sandbox, inputs: Path, write_png: PngWriter) -> None:
    app = create_app(models=[tiny_release], max_upload_bytes=2_000)
    big = write_png(inputs / "big.png", 40, 40)  # noisy pixels: more than 2 kB
    assert big.stat().st_size > 2_000
    with TestClient(app) as client:
        response = _upload(client, big)
        assert response.status_code == 413
        assert response.json() == {"error": "the file is larger than this server's limit of 0.002 MB"}

        # a body far over the limit, streamed without Content-Length, is cut off while it arrives
        boundary = "xyzzy"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()

        def chunks() -> Iterator[bytes]:
            yield head
            for _ in range(40):
                yield b"\0" * 8192
            yield f"\r\n--{boundary}--\r\n".encode()

        streamed = client.post(
            "/api/upscale", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
        assert streamed.status_code == 413
        assert "larger than this server's limit" in streamed.json()["error"]
    sandbox.assert_clean()


def test_upload_just_over_the_limit_is_413(
    tiny_release: Path, sandbox: Sandbox, inputs: Path, write_png: PngWriter
) -> None:
    image = write_png(inputs / "a.png", 40, 40)
    size = image.stat().st_size
    with TestClient(create_app(models=[tiny_release], max_upload_bytes=size - 1)) as client:
        response = _upload(client, image)  # the body is within the form allowance; the file itself is not
        assert response.status_code == 413
        assert response.json()["error"].startswith("the file is larger than this server's limit of")
    with TestClient(create_app(models=[tiny_release], max_upload_bytes=size)) as client:
        assert _upload(client, image).status_code == 200


def test_pixel_limit_is_413(tiny_release: Path, sandbox: Sandbox, inputs: Path, write_png: PngWriter) -> None:
    with TestClient(create_app(models=[tiny_release], max_pixels=200)) as client:
        response = _upload(client, write_png(inputs / "wide.png", 10, 21))
        assert response.status_code == 413
        message = response.json()["error"]
        assert message.startswith("wide.png is 21x10 = 0.00 MP; this server accepts at most 0.0002 MP")
        assert _upload(client, write_png(inputs / "ok.png", 10, 20)).status_code == 200
    sandbox.assert_clean()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.png", b"hello, this is not an image\n", "cannot read notes.png: not an image"),
        ("empty.png", b"", "empty.png is empty"),
        ("cut.png", None, "cannot read cut.png: "),
    ],
)
def test_bad_files_are_400_with_one_line(
    client: TestClient, inputs: Path, name: str, content: bytes | None, expected: str, write_png: PngWriter
) -> None:
    if content is None:  # a truncated PNG: a valid header, half the data
        content = write_png(inputs / "whole.png", 30, 30).read_bytes()[:300]
    response = client.post("/api/upscale", files={"file": (name, content, "image/png")})
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith(expected), message
    assert "\n" not in message and "blindsr-serve" not in message  # one line, no server paths


def test_images_below_the_model_minimum_are_400(client: TestClient, inputs: Path, write_png: PngWriter) -> None:
    response = _upload(client, write_png(inputs / "tiny.png", 5, 9))
    assert response.status_code == 400
    assert response.json() == {"error": "tiny.png is 9x5; this model needs at least 8 pixels a side"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"model": "nope"}, "unknown model 'nope'; this server offers tiny"),
        ({"outscale": "x3"}, "outscale must be a number, got 'x3'"),
        ({"outscale": "3"}, "outscale must be between 1 and 2 for tiny, got 3"),
        ({"outscale": "0.5"}, "outscale must be between 1 and 2 for tiny, got 0.5"),
        ({"outscale": "nan"}, "outscale must be between 1 and 2 for tiny, got nan"),
    ],
)
def test_bad_fields_are_400(
    client: TestClient, inputs: Path, fields: dict[str, str], expected: str, write_png: PngWriter
) -> None:
    response = _upload(client, write_png(inputs / "a.png", 8, 8), **fields)
    assert response.status_code == 400
    assert response.json() == {"error": expected}


def test_requests_without_a_file_are_400(client: TestClient) -> None:
    response = client.post("/api/upscale", data={"model": "tiny"}, files={"other": ("a.txt", b"x", "text/plain")})
    assert response.status_code == 400
    assert response.json() == {"error": "no file uploaded (expected a form field 'file' holding an image)"}
    plain = client.post("/api/upscale", content=b"{}", headers={"content-type": "application/json"})
    assert plain.status_code == 400
    assert plain.json() == {"error": "expected a multipart/form-data upload with a 'file' field"}


def test_unknown_result_is_404(client: TestClient) -> None:
    response = client.get("/api/result/0123456789abcdef/result.png")
    assert response.status_code == 404
    assert response.json() == {"error": "no such result (this server keeps the last 8 results)"}


# --------------------------------------------------------------------------------------------------------------
# one job at a time, failures, files on disk


def test_second_upload_during_a_job_is_429(
    tiny_release: Path, sandbox: Sandbox, inputs: Path, write_png: PngWriter
) -> None:
    gate = threading.Event()
    app, started = _fake_app(tiny_release, gate=gate)
    image = write_png(inputs / "a.png", 6, 8)
    with TestClient(app) as client:
        first: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: first.setdefault("response", _upload(client, image)))
        worker.start()
        try:
            assert started.wait(timeout=20), "the first job never started"
            second = _upload(client, image)
            assert second.status_code == 429
            assert second.headers["retry-after"] == "2"
            assert second.json()["error"].startswith("busy: another image is being upscaled")
            assert client.get("/api/models").status_code == 200  # the server stays responsive meanwhile
        finally:
            gate.set()
            worker.join(timeout=20)
        assert first["response"].status_code == 200
        data = first["response"].json()
        assert data["output"] == {"width": 16, "height": 12}
        assert data["urls"]["kernel"] is None and data["urls"]["noise"] is None and data["estimate"] is None
        assert _upload(client, image).status_code == 200  # the lock was released
    sandbox.assert_clean()


def test_model_failure_is_500_and_releases_the_lock(
    tiny_release: Path, sandbox: Sandbox, inputs: Path, write_png: PngWriter
) -> None:
    app, _ = _fake_app(tiny_release, fail=True)
    image = write_png(inputs / "a.png", 6, 8)
    with TestClient(app) as client:
        for _ in range(2):  # a second attempt is not "busy"
            response = _upload(client, image)
            assert response.status_code == 500
            assert response.json() == {"error": "upscaling failed: RuntimeError: boom"}
        store = app.state.store
        assert len(store) == 0 and store.root is not None and list(store.root.iterdir()) == []
    sandbox.assert_clean()


def test_files_stay_in_one_temporary_directory(
    tiny_release: Path, sandbox: Sandbox, inputs: Path, write_png: PngWriter
) -> None:
    app = create_app(models=[tiny_release], max_results=2)
    store = app.state.store
    with TestClient(app) as client:
        assert store.root is None and list(sandbox.tmp.iterdir()) == []  # an idle server writes nothing
        ids = []
        for seed in range(3):
            response = _upload(client, write_png(inputs / f"{seed}.png", 8, 8, seed=seed))
            assert response.status_code == 200, response.text
            ids.append(response.json()["id"])
        root = store.root
        assert root is not None and root.parent == sandbox.tmp and root.name.startswith("blindsr-serve-")
        assert list(sandbox.tmp.iterdir()) == [root]
        assert sorted(p.name for p in root.iterdir()) == sorted(ids[1:])  # the oldest result was deleted
        assert client.get(f"/api/result/{ids[0]}/result.png").status_code == 404
        assert client.get(f"/api/result/{ids[2]}/result.png").status_code == 200
        assert sorted(p.name for p in (root / ids[2]).iterdir()) == [
            "bicubic.png",
            "kernel.png",
            "noise.png",
            "result.png",
        ]  # the upload itself is gone once decoded
        assert list(sandbox.cwd.iterdir()) == []
    assert not root.exists()
    sandbox.assert_clean()


# --------------------------------------------------------------------------------------------------------------
# construction, CLI, pieces


def test_create_app_checks_its_arguments(tiny_release: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no model to serve"):
        create_app(models=[])
    with pytest.raises(ValueError, match="default model 'other' is not offered"):
        create_app(models=[tiny_release], default_model="other")
    with pytest.raises(FileNotFoundError):
        create_app(models=[tmp_path / "missing.safetensors"])
    with pytest.raises(ValueError, match="limits must be positive"):
        create_app(models=[tiny_release], max_pixels=0)
    app = create_app(models=[tiny_release, tiny_release], default_model=str(tiny_release))
    assert [e.name for e in app.state.models] == ["tiny-x2", "tiny-x2-2"]


def test_cli_reports_a_missing_model_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "-m", str(tmp_path / "missing.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("blindsr serve: error: ") and "missing.safetensors" in err and "\n" not in err


def test_cli_without_the_demo_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes `import uvicorn` fail
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "blindsr serve: error: the web demo needs fastapi, uvicorn and python-multipart (uvicorn is missing): "
        "pip install -e '.[demo]' in the blindsr clone\n"
    )


def test_serve_package_imports_without_fastapi() -> None:
    code = (
        "import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None\n"
        "import blindsr.serve\n"
        "try:\n    blindsr.serve.create_app()\nexcept ImportError:\n    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_default_factory_reuses_models_and_upscalers(tiny_release: Path) -> None:
    from blindsr.inference import Upscaler
    from blindsr.serve.jobs import default_upscaler_factory

    factory = default_upscaler_factory(device="cpu", tile=None)
    native, smaller = factory(str(tiny_release), None), factory(str(tiny_release), 1.5)
    assert factory(str(tiny_release), None) is native and native is not smaller
    assert native.scale == smaller.scale == 2
    assert isinstance(native, Upscaler) and isinstance(smaller, Upscaler)
    assert native.model is smaller.model  # one network in memory
    result = smaller.upscale_with_degradation(np.zeros((8, 10, 3), np.uint8))
    assert result.image.shape == (12, 15, 3) and result.kernel is not None and result.noise is not None


def test_summarize_degradation() -> None:
    assert summarize_degradation(None, None) is None
    y, x = np.mgrid[-10:11, -10:11]
    kernel = np.exp(-(x**2) / (2 * 2.0**2) - y**2 / (2 * 1.0**2))
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 10 / 255, (64, 64, 3))
    summary = summarize_degradation(kernel * 7.0, noise)  # not normalised: the summary normalises
    assert summary is not None
    assert summary["kernel_size"] == 21
    assert summary["kernel_sigma_xy"] == [2.0, 1.0]
    assert summary["kernel_sigma"] == pytest.approx(np.sqrt((4 + 1) / 2), abs=0.01)
    assert summary["noise_sigma"] == pytest.approx(10, abs=0.3)
    assert summarize_degradation(None, np.zeros((4, 4, 3))) == {
        "kernel_size": None,
        "kernel_sigma": None,
        "kernel_sigma_xy": None,
        "noise_sigma": 0.0,
    }


def test_bytes_io_uploads_work_with_run_job(
    tiny_release: Path, sandbox: Sandbox, inputs: Path, write_png: PngWriter
) -> None:
    """run_job reads any binary file object: the HTTP layer is not needed to drive it."""
    from blindsr.serve.jobs import ResultStore, resolve_models, run_job

    entry = resolve_models([tiny_release])[0]
    store = ResultStore(max_results=1)
    data = write_png(inputs / "a.png", 6, 8).read_bytes()

    def factory(source: str, outscale: float | None) -> FakeUpscaler:
        assert source == str(tiny_release) and outscale is None
        return FakeUpscaler(started=threading.Event(), gate=None, fail=False)

    job = run_job(
        upload=io.BytesIO(data), filename="../../etc/x.png", entry=entry, outscale=None,
        factory=factory, store=store, max_pixels=1000,
    )  # fmt: skip
    assert job.download_name == "x_x2.png" and set(job.files) == {"result", "bicubic"}
    assert all(p.parent == job.directory and p.is_file() for p in job.files.values())
    store.close()
    assert not job.directory.exists()
    sandbox.assert_clean()
