"""No command destroys data, numbers are checked at the edge, and a bad model file is one clear line.

Each test is a case a hostile user found (the hardening issue): the command must refuse (exit 2, one line, no
traceback) or report per file (exit 1) and leave every input byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from blindsr.cli.main import main
from blindsr.nets.dmsr import DMSRNet
from blindsr.zoo import save_release

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "configs" / "toy" / "x2.yaml"
FAST = [
    *("--set", "train.total_steps=2", "--set", "validation.every=0", "--set", "log.progress=false"),
    *("--set", "method.options.n_feats=4", "--set", "data.patch_size=32", "--set", "data.batch_size=2"),
    *("--set", "train.device=cpu"),
]
KWARGS: dict[str, Any] = {"scale": 2, "n_feats": 8, "n_groups": 1, "n_blocks": 1, "extractor_channels": 8}


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path: what 'nothing was touched' compares."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _hr(root: Path, n: int = 3, size: int = 24) -> Path:
    hr = root / "HR"
    hr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(hr / f"img{i}.png")
    return hr


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


DEGRADE = ["--scale", "2", "--kernel-sigma", "1.0", "-q"]


# ---------------------------------------------------------------------------------------------------------------
# degrade: the output folder and existing files


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_degrade_refuses_an_output_folder_that_is_inside_or_contains_the_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    hr = _hr(tmp_path / "set")
    before = _digest(tmp_path)
    out = {"same": hr, "inside": hr / "lr", "contains": tmp_path / "set"}[where]
    assert main(["degrade", str(hr), "-o", str(out), *DEGRADE]) == 2
    _one_line_error(capsys, "-o", "input")
    assert _digest(tmp_path) == before and not (hr / "lr").exists()


def test_degrade_keeps_existing_outputs_unless_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hr = _hr(tmp_path)
    out = tmp_path / "lr"
    assert main(["degrade", str(hr), "-o", str(out), *DEGRADE]) == 0
    first = _digest(out)
    marker = out / "img1.png"
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(marker)  # the user's edit of one output
    edited = marker.read_bytes()
    capsys.readouterr()
    assert main(["degrade", str(hr), "-o", str(out), *DEGRADE]) == 0
    assert "kept 3 existing" in capsys.readouterr().out
    assert marker.read_bytes() == edited  # not replaced
    index = json.loads((out / "degradation.json").read_text())
    assert [e["stem"] for e in index["images"]] == ["img0", "img1", "img2"]
    assert main(["degrade", str(hr), "-o", str(out), *DEGRADE, "--overwrite"]) == 0
    assert _digest(out) == first


def test_degrade_refuses_a_folder_made_with_other_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hr = _hr(tmp_path)
    out = tmp_path / "lr"
    assert main(["degrade", str(hr), "-o", str(out), *DEGRADE]) == 0
    before = _digest(out)
    capsys.readouterr()
    assert main(["degrade", str(hr), "-o", str(out), "--scale", "2", "--kernel-sigma", "2.0", "-q"]) == 2
    _one_line_error(capsys, "other settings", "kernel", "--overwrite")
    assert _digest(out) == before


def test_degrade_one_bad_image_does_not_stop_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hr = _hr(tmp_path)
    (hr / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    out = tmp_path / "lr"
    assert main(["degrade", str(hr), "-o", str(out), *DEGRADE]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0] and "1 of 4 failed" in captured.err
    assert "Traceback" not in captured.err
    assert sorted(p.name for p in out.glob("*.png")) == ["img0.png", "img1.png", "img2.png"]


def test_degrade_preset_guards_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hr = _hr(tmp_path, size=24)
    before = _digest(hr)
    assert main(["degrade", str(hr), "-o", str(hr / "cells"), "--preset", "dmsr-grid", "--scale", "2", "-q"]) == 2
    _one_line_error(capsys, "inside the input")
    assert _digest(hr) == before
    out = tmp_path / "cells"
    assert main(["degrade", str(hr), "-o", str(out), "--preset", "dmsr-grid", "--scale", "2", "-q"]) == 0
    first = _digest(out)
    capsys.readouterr()
    assert main(["degrade", str(hr), "-o", str(out), "--preset", "dmsr-grid", "--scale", "2", "-q"]) == 0
    assert "kept 21 existing" in capsys.readouterr().out and _digest(out) == first
    index = json.loads((out / "index.json").read_text())
    assert all(cell["images"] == ["img0", "img1", "img2"] for cell in index["cells"])


# ---------------------------------------------------------------------------------------------------------------
# degrade: numbers at the edge


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--scale", "2", "--kernel-sigma", "nan"], "--kernel-sigma must be a finite number"),
        (["--scale", "2", "--kernel-sigma", "inf"], "--kernel-sigma must be a finite number"),
        (["--scale", "2", "--kernel-sigma", "1", "--kernel-size", "20001"], "--kernel-size must be an odd integer"),
        (["--scale", "2", "--aniso", "1", "1", "nan"], "--aniso THETA_DEG must be a finite number"),
        (["--scale", "2", "--aniso", "1", "-1", "0"], "--aniso L2 must be > 0"),
        (["--scale", "2", "--kernel-sigma", "1", "--noise", "nan"], "--noise must be a finite number"),
        (["--scale", "2", "--kernel-sigma", "1", "--noise", "1000"], "--noise is on the 0-255 scale"),
        (["--scale", "0", "--kernel-sigma", "1"], "--scale must be an integer in 1..16"),
        (["--scale", "100000", "--kernel-sigma", "1"], "--scale must be an integer in 1..16"),
    ],
)
def test_degrade_numbers_are_checked_with_the_flag_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    hr = _hr(tmp_path)
    out = tmp_path / "lr"
    assert main(["degrade", str(hr), "-o", str(out), "-q", *args]) == 2
    _one_line_error(capsys, needle)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------------------
# metrics --json / eval --json


@pytest.fixture
def scored(tmp_path: Path) -> tuple[Path, Path]:
    """An HR folder and an SR folder of the same three images (PSNR is then infinite)."""
    hr = _hr(tmp_path / "set")
    sr = tmp_path / "sr"
    sr.mkdir()
    for path in hr.iterdir():
        (sr / path.name).write_bytes(path.read_bytes())
    return hr, sr


def test_metrics_json_never_replaces_an_input(
    tmp_path: Path, scored: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    hr, sr = scored
    before = _digest(tmp_path)
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "--json", str(sr / "img0.png"), "--overwrite"]) == 2
    _one_line_error(capsys, "--json", "is an input")
    assert _digest(tmp_path) == before


def test_metrics_json_into_a_folder_is_one_line_before_the_work(
    tmp_path: Path, scored: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    hr, sr = scored
    target = tmp_path / "reports"
    target.mkdir()
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "--json", str(target)]) == 2
    err = _one_line_error(capsys, "is a folder")
    assert "mean over" not in err and not any(target.iterdir())
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "--json", f"{tmp_path}/new/"]) == 2
    _one_line_error(capsys, "is a folder")


def test_metrics_json_creates_only_its_own_folder(
    tmp_path: Path, scored: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    hr, sr = scored
    deep = tmp_path / "nonexistent" / "dir" / "m.json"
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "--json", str(deep)]) == 2
    _one_line_error(capsys, "does not exist", "only the file's own folder is created")
    assert not (tmp_path / "nonexistent").exists()
    one_level = tmp_path / "reports" / "m.json"
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "--json", str(one_level), "-q"]) == 0
    data = json.loads(one_level.read_text())  # strict JSON: the infinite PSNR of identical images is null
    assert data["images"]["img0"]["psnr"] is None and data["mean"]["ssim"] == pytest.approx(1.0)
    assert "Infinity" not in one_level.read_text()


def test_metrics_json_existing_needs_overwrite_and_other_files_are_never_replaced(
    tmp_path: Path, scored: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    hr, sr = scored
    report = tmp_path / "m.json"
    report.write_text('{"old": true}\n')
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "--json", str(report)]) == 2
    _one_line_error(capsys, "exists; use --overwrite")
    assert json.loads(report.read_text()) == {"old": True}
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "--json", str(report), "--overwrite", "-q"]) == 0
    assert "images" in json.loads(report.read_text())
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "--json", str(notes), "--overwrite"]) == 2
    _one_line_error(capsys, "not a .json file")
    assert notes.read_text() == "my notes\n"


def test_metrics_an_unreadable_sr_image_is_one_line_and_the_rest_is_scored(
    scored: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    hr, sr = scored
    (sr / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "-q"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "img1.png" in captured.err
    assert "mean over 2 images" in captured.out


def test_eval_json_is_checked_before_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"keep me")
    args = ["eval", "-m", "bicubic", "--protocol", "gaussian8-x4", "--data-root", str(tmp_path)]
    assert main([*args, "--json", str(image), "--overwrite"]) == 2
    _one_line_error(capsys, "not a .json file")
    assert image.read_bytes() == b"keep me"


# ---------------------------------------------------------------------------------------------------------------
# export / export-onnx


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "toy"
    assert main(["train", str(TOY), *FAST, "--run-dir", str(run)]) == 0
    return run


def test_export_never_writes_onto_the_runs_own_weights(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _digest(finished_run)
    target = finished_run / "final" / "networks.safetensors"
    assert main(["export", str(finished_run), "-o", str(target), "--overwrite"]) == 2
    _one_line_error(capsys, "is an input")
    assert _digest(finished_run) == before


def test_export_existing_file_needs_overwrite(
    tmp_path: Path, finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.safetensors"
    assert main(["export", str(finished_run), "-o", str(out)]) == 0
    first = out.read_bytes()
    out.write_bytes(b"someone else's file")
    capsys.readouterr()
    assert main(["export", str(finished_run), "-o", str(out)]) == 2
    _one_line_error(capsys, "exists; use --overwrite")
    assert out.read_bytes() == b"someone else's file"
    assert main(["export", str(finished_run), "-o", str(out), "--overwrite"]) == 0
    assert out.read_bytes() == first


@pytest.mark.parametrize("kind", ["folder", "trailing-slash", "parent-is-a-file", "two-levels-missing"])
def test_export_bad_targets_are_one_line(
    tmp_path: Path, finished_run: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = {
        "folder": str(tmp_path),
        "trailing-slash": f"{tmp_path}/new/",
        "parent-is-a-file": str(blocker / "m.safetensors"),
        "two-levels-missing": str(tmp_path / "a" / "b" / "m.safetensors"),
    }[kind]
    assert main(["export", str(finished_run), "-o", target]) == 2
    _one_line_error(capsys, target.rstrip("/").split("/")[-1] if kind != "parent-is-a-file" else "not a folder")
    assert not (tmp_path / "a").exists() and not (tmp_path / "new").exists()


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("release") / "tiny.safetensors"
    save_release(DMSRNet(**KWARGS), path, arch="dmsr", arch_kwargs=KWARGS, scale=2)
    return path


def test_export_onnx_never_replaces_its_model(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = release.read_bytes()
    assert main(["export-onnx", "-m", str(release), "-o", str(release), "--overwrite", "--no-check"]) == 2
    _one_line_error(capsys, "is an input")
    assert release.read_bytes() == before


def test_export_onnx_existing_file_needs_overwrite(
    tmp_path: Path, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old graph")
    assert main(["export-onnx", "-m", str(release), "-o", str(out), "--no-check"]) == 2
    _one_line_error(capsys, "exists; use --overwrite")
    assert out.read_bytes() == b"old graph"
    assert main(["export-onnx", "-m", str(release), "-o", str(tmp_path / "d") + "/", "--no-check"]) == 2
    _one_line_error(capsys, "is a folder")


# ---------------------------------------------------------------------------------------------------------------
# model files that lie about themselves


def _forged(path: Path, *, arch_kwargs: dict[str, Any], scale: int = 2, int8: bool = False) -> Path:
    """A release file of the tiny DMSR with edited metadata or weights, written without save_release's checks."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in DMSRNet(**KWARGS).state_dict().items()}
    if int8:
        state = {k: (v * 100).round().clamp(-128, 127).to(torch.int8) for k, v in state.items()}
    meta = {"format": "blindsr-model", "arch": "dmsr", "arch_kwargs": json.dumps(arch_kwargs), "scale": str(scale)}
    save_file(state, str(path), metadata=meta)
    return path


def _upscale_with(model: str, tmp_path: Path) -> int:
    image = tmp_path / "in.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(image)
    return main(["upscale", str(image), "-o", str(tmp_path / "out"), "-m", model, "--tile", "0", "-q"])


def test_int8_weights_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _forged(tmp_path / "int8.safetensors", arch_kwargs=KWARGS, int8=True)
    assert _upscale_with(str(model), tmp_path) == 2
    _one_line_error(capsys, "int8", "floating weights")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"n_feats": -8}, "n_feats must be an integer in 1..1024, got -8"),
        ({"n_feats": 10**6}, "n_feats must be an integer in 1..1024"),
        ({"n_feats": 1024, "n_groups": 4, "n_blocks": 8}, "above the limit"),
        ({"kernel_size": 14}, "kernel size must be a positive odd integer"),
        ({"n_feats": "wide"}, "n_feats must be an integer"),
    ],
)
def test_absurd_arch_kwargs_are_refused_before_allocating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], needle: str
) -> None:
    model = _forged(tmp_path / "edited.safetensors", arch_kwargs={**KWARGS, **change})
    assert _upscale_with(str(model), tmp_path) == 2
    _one_line_error(capsys, needle)


def test_a_metadata_scale_that_disagrees_with_the_network_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _forged(tmp_path / "scale.safetensors", arch_kwargs=KWARGS, scale=4)
    assert _upscale_with(str(model), tmp_path) == 2
    _one_line_error(capsys, "metadata says scale 4", "x2")


def test_a_folder_passed_as_model_says_it_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "myrun"
    run.mkdir()
    (run / "config.yaml").write_text("experiment: x\n")
    assert _upscale_with(str(run), tmp_path) == 2
    _one_line_error(capsys, "is a folder", "blindsr export")


def test_train_with_a_negative_width_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", str(TOY), *FAST, "--set", "method.options.n_feats=-8", "--run-dir", str(tmp_path / "run")]
    assert main(args) == 2
    _one_line_error(capsys, "n_feats must be an integer in 1..1024, got -8")


# ---------------------------------------------------------------------------------------------------------------
# analyze -o


def test_analyze_never_writes_its_plot_onto_an_input_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(image)
    before = image.read_bytes()
    argv = ["analyze", "rdam", "-m", "mrda-x4", "-i", str(image), "-o", str(image), "--overwrite", "-q"]
    assert main(argv) == 2
    _one_line_error(capsys, "is an input")
    assert image.read_bytes() == before


def test_analyze_keeps_an_existing_plot_and_its_companions_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kernels.png"
    (tmp_path / "kernels.csv").write_text("mine\n")
    argv = ["analyze", "kernels", "-m", "dmsr-x4", "--data-root", str(tmp_path / "data"), "-o", str(out), "-q"]
    assert main(argv) == 2
    _one_line_error(capsys, "kernels.csv exists; use --overwrite")
    assert (tmp_path / "kernels.csv").read_text() == "mine\n" and not out.exists()


# ---------------------------------------------------------------------------------------------------------------
# upscale: the output is never held in float32 when the file keeps the image's kind


class _LargestFloatImage(torch.utils._python_dispatch.TorchDispatchMode):
    """The largest H x W of any floating-point tensor a torch op creates while active."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.ndim >= 2:
                self.largest = max(self.largest, int(t.shape[-2]) * int(t.shape[-1]))
        return out


@pytest.mark.parametrize(("name", "array"), [("rgb.png", (96, 96, 3)), ("deep.png", (96, 96)), ("c.jpg", (96, 96, 3))])
def test_upscale_writes_integer_outputs_without_a_full_size_float_image(
    tmp_path: Path, release: Path, name: str, array: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, array, dtype=np.uint8)
    source = tmp_path / name
    Image.fromarray(pixels.astype("<u2") * 257 if name == "deep.png" else pixels).save(source)
    args = ["upscale", str(source), "-o", str(tmp_path / "out"), "-m", str(release), "--tile", "32", "-q"]
    assert main(args) == 0  # imports and first-call allocations, outside the measurement
    args.append("--overwrite")
    mode = _LargestFloatImage()
    with mode:
        assert main(args) == 0
    output_pixels = 192 * 192
    assert mode.largest < output_pixels, f"a float tensor of {mode.largest:,} px (the output has {output_pixels:,})"
    written = np.asarray(Image.open(tmp_path / "out" / f"{source.stem}_x2{source.suffix}"))
    assert written.shape[:2] == (192, 192) and written.dtype == (np.uint16 if name == "deep.png" else np.uint8)


def test_degrade_refuses_lr_files_without_an_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An interrupted run (or another tool) left LR files but no degradation.json: their settings are unknown."""
    hr = _hr(tmp_path)
    out = tmp_path / "lr"
    assert main(["degrade", str(hr), "-o", str(out), *DEGRADE]) == 0
    (out / "degradation.json").unlink()
    before = _digest(out)
    capsys.readouterr()
    assert main(["degrade", str(hr), "-o", str(out), "--scale", "2", "--kernel-sigma", "3.0", "-q"]) == 2
    _one_line_error(capsys, "no degradation.json", "--overwrite")
    assert _digest(out) == before


def test_degrade_writes_its_settings_before_any_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the first image, a run leaves an index of its settings, so a rerun knows what it may keep."""
    from blindsr.cli import degrade as cli_degrade

    hr = _hr(tmp_path)
    out = tmp_path / "lr"
    calls = []

    def write_then_die(path: Path, lr: Any) -> None:
        if calls:
            raise KeyboardInterrupt
        calls.append(path)
        real_write(path, lr)

    real_write = cli_degrade._write
    monkeypatch.setattr(cli_degrade, "_write", write_then_die)
    assert main(["degrade", str(hr), "-o", str(out), *DEGRADE]) == 130
    index = json.loads((out / "degradation.json").read_text())
    assert index["complete"] is False and index["kernel"]["sigma"] == 1.0
    monkeypatch.setattr(cli_degrade, "_write", real_write)
    assert main(["degrade", str(hr), "-o", str(out), *DEGRADE]) == 0
    index = json.loads((out / "degradation.json").read_text())
    assert index["complete"] is True and [e["stem"] for e in index["images"]] == ["img0", "img1", "img2"]
    assert main(["degrade", str(hr), "-o", str(out), "--scale", "2", "--kernel-sigma", "3.0", "-q"]) == 2


def test_a_hard_link_to_an_input_is_an_input(tmp_path: Path, release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another name of the same file (a hard link; a name differing in case on macOS/Windows) is refused too."""
    hr, sr = tmp_path / "hr", tmp_path / "sr"
    _hr(tmp_path / "set")
    (tmp_path / "set" / "HR").rename(hr)
    sr.mkdir()
    for path in hr.iterdir():
        (sr / path.name).write_bytes(path.read_bytes())
    alias = tmp_path / "alias.json"
    alias.hardlink_to(sr / "img0.png")
    before = (sr / "img0.png").read_bytes()
    assert main(["metrics", str(sr), str(hr), "--scale", "2", "--json", str(alias), "--overwrite"]) == 2
    _one_line_error(capsys, "is an input")
    source = tmp_path / "in.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(source)
    out = tmp_path / "out"
    out.mkdir()
    (out / "in_x2.png").hardlink_to(source)
    args = ["upscale", str(source), "-o", str(out), "-m", str(release), "--tile", "0", "--overwrite", "-q"]
    assert main(args) == 1
    assert "refusing to overwrite the input" in capsys.readouterr().err
    assert (sr / "img0.png").read_bytes() == before and source.read_bytes() == (out / "in_x2.png").read_bytes()


def test_upscale_creates_its_output_folder_but_not_a_tree(
    tmp_path: Path, release: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(source)
    deep = tmp_path / "a" / "b" / "out.png"
    assert main(["upscale", str(source), "-o", str(deep), "-m", str(release), "--tile", "0", "-q"]) == 2
    _one_line_error(capsys, "does not exist")
    assert not (tmp_path / "a").exists()
    one = tmp_path / "a" / "out.png"
    assert main(["upscale", str(source), "-o", str(one), "-m", str(release), "--tile", "0", "-q"]) == 0
    assert one.is_file()


def test_export_may_write_a_new_file_into_the_run_folder(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = finished_run / "model.safetensors"
    assert main(["export", str(finished_run), "-o", str(target)]) == 0
    assert main(["export", str(finished_run), "-o", str(target), "--overwrite"]) == 0
    target.unlink()


def test_analyze_never_writes_into_the_data_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hr = _hr(tmp_path / "Set5")
    target = hr / "img0.png"
    before = target.read_bytes()
    argv = ["analyze", "kernels", "-m", "dmsr-x4", "--data-root", str(tmp_path), "-o", str(target), "--overwrite"]
    assert main(argv) == 2
    _one_line_error(capsys, "inside --data-root")
    assert target.read_bytes() == before


def test_a_system_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError nobody anticipated (here: the disk fills while a log is written) is one line, not a traceback."""
    import errno

    from blindsr.cli import protocols

    def full(args: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "log.jsonl"))

    monkeypatch.setattr(protocols, "run", full)  # `register` binds it when main builds the parser
    assert main(["protocols"]) == 2
    _one_line_error(capsys, "No space left on device", "log.jsonl")


def test_a_pickled_checkpoint_is_named_and_never_unpickled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params_ema": {"w": torch.zeros(2)}}, path)
    assert _upscale_with(str(path), tmp_path) == 2
    _one_line_error(capsys, "pickled PyTorch checkpoint", "never unpickles")


# ------------------------------------------------------------------------------------------------ issue 18: flags


def test_unknown_flags_print_the_sub_commands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", "x.png", "--fp16x", "-z"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("usage: blindsr upscale ")
    assert "blindsr upscale: error: unrecognized arguments: --fp16x -z" in err
    with pytest.raises(SystemExit):  # a sub-sub-command: its own usage
        main(["analyze", "kernels", "-m", "m", "--data-root", "d", "-o", "k.png", "--fp32"])
    err = capsys.readouterr().err
    assert err.startswith("usage: blindsr analyze kernels ") and "unrecognized arguments: --fp32" in err
    with pytest.raises(SystemExit):
        main(["--nope"])
    assert "usage: blindsr [-h]" in capsys.readouterr().err


def test_real_esrgan_flags_map_onto_upscale_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from blindsr.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["upscale", "x.png", "--fp32", "-g", "1"])
    assert (args.precision, args.device) == ("fp32", "cuda:1")
    args = parser.parse_args(["upscale", "x.png", "--precision", "bf16", "--gpu-id", "0"])
    assert (args.precision, args.device) == ("bf16", "cuda:0")
    assert parser.parse_args(["upscale", "x.png", "--gpu_id", "2"]).device == "cuda:2"
    assert parser.parse_args(["upscale", "x.png"]).device == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["upscale", "x.png", "-g", "zero"])


def test_eval_defaults_to_the_device_upscale_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    from blindsr.cli import evaluate
    from blindsr.cli.main import build_parser
    from blindsr.inference import upscaler

    parser = build_parser()
    assert parser.parse_args(["eval", "--protocol", "gaussian8-x4", "--data-root", "d"]).device == "auto"
    assert parser.parse_args(["upscale", "x.png"]).device == "auto"
    seen: list[str] = []

    def resolve(device: str) -> torch.device:
        seen.append(device)
        return torch.device("cpu")

    monkeypatch.setattr(upscaler, "resolve_device", resolve)  # `eval` resolves "auto" as `upscale` does
    with pytest.raises(FileNotFoundError, match="data root"):  # no data: it stops after resolving the device
        evaluate.run(parser.parse_args(["eval", "--protocol", "gaussian8-x4", "--data-root", "/nonexistent"]))
    assert seen == ["auto"]
