"""`blindsr export-onnx`: a tiny DMSR release exported and checked; one-line errors for what a user can fix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from blindsr.cli.main import main
from blindsr.nets.dmsr import DMSRNet
from blindsr.zoo import onnx as zoo_onnx
from blindsr.zoo import save_release

KWARGS: dict[str, object] = {
    "scale": 2,
    "n_feats": 8,
    "n_groups": 1,
    "n_blocks": 1,
    "reduction": 4,
    "extractor_channels": 8,
    "kernel_size": 7,
    "mbm_identity_init": False,
}


@pytest.fixture
def release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A random tiny DMSR release; the command's trace and check sizes made smaller (<= 48 px) for speed."""
    monkeypatch.setattr(zoo_onnx, "TRACE_SHAPE", (1, 3, 32, 28))
    monkeypatch.setattr(zoo_onnx, "PARITY_SHAPES", ((1, 3, 37, 45), (2, 3, 24, 40)))
    path = tmp_path / "tiny.safetensors"
    save_release(DMSRNet(**KWARGS), path, arch="dmsr", arch_kwargs=KWARGS, scale=2)  # type: ignore[arg-type]
    return path


def test_export_onnx_checks_and_writes(release: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "tiny.onnx"
    assert main(["export-onnx", "-m", str(release), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.is_file()
    assert "exported tiny (dmsr, x2) with the legacy exporter, opset 17" in text and "sr, kernel, noise" in text
    assert "1x3x37x45: sr " in text and "2x3x24x40: sr " in text and f"wrote {out}" in text
    assert zoo_onnx.read_onnx_metadata(out)["arch"] == "dmsr"


def test_export_onnx_failures_are_one_line(
    release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "tiny.onnx"

    assert main(["export-onnx", "-m", "dmsr-x9", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("blindsr export-onnx: error: unknown model 'dmsr-x9'") and err.count("\n") == 1

    # a tolerance nothing can meet: the diffs are printed, the error is one line, and nothing is written
    assert main(["export-onnx", "-m", str(release), "-o", str(out), "--tolerance", "1e-15"]) == 2
    captured = capsys.readouterr()
    assert "1x3x37x45: sr " in captured.out
    assert "parity check failed" in captured.err and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert not out.exists()

    assert main(["export-onnx", "-m", str(release), "-o", str(out), "--no-check", "--opset", "18"]) == 0
    assert "parity check skipped" in capsys.readouterr().out and out.is_file()

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(["export-onnx", "-m", str(release), "-o", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[export]'" in err and err.count("\n") == 1


def test_export_onnx_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export-onnx", "--help"])
    text = capsys.readouterr().out
    assert "--legacy" in text and "--dynamo" in text and "--no-check" in text and "--opset" in text
