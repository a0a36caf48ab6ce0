"""ONNX export (blindsr.zoo.onnx): a tiny random DMSR release exported with dynamic sizes, checked with ONNX Runtime."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from blindsr.nets.dmsr import DMSRNet
from blindsr.zoo import load_model, save_release, sha256_file
from blindsr.zoo import onnx as zoo_onnx

# small, and different from the trace shape and from each other in batch, height and width
SHAPES = ((1, 3, 37, 45), (2, 3, 24, 40))
TRACE = (1, 3, 32, 28)


def tiny_dmsr_kwargs(kernel_size: int = 15) -> dict[str, object]:
    """A DMSR with the real structure (extractor, RCAN group, one meta-deblur module) and a few thousand weights."""
    return {
        "scale": 2,
        "n_feats": 8,
        "n_groups": 1,
        "n_blocks": 1,
        "reduction": 4,
        "extractor_channels": 8,
        "kernel_size": kernel_size,
        "mbm_identity_init": False,  # a random meta-deblur, so its per-pixel filter really filters
    }


def make_release(path: Path, kernel_size: int = 15) -> Path:
    """Write a randomly initialised tiny DMSR as a release file (what `blindsr export` writes)."""
    kwargs = tiny_dmsr_kwargs(kernel_size)
    torch.manual_seed(0)
    net = DMSRNet(**kwargs)  # type: ignore[arg-type]
    save_release(net, path, arch="dmsr", arch_kwargs=kwargs, scale=2)
    return path


def test_exportable_module_matches_and_leaves_the_model_alone() -> None:
    torch.manual_seed(0)
    net = DMSRNet(**tiny_dmsr_kwargs()).train()  # type: ignore[arg-type]
    lr = torch.rand(2, 3, 19, 23)
    module = zoo_onnx.exportable_module(net, ("sr", "kernel", "noise"))
    assert net.training and net.mbms[0].filter_impl == "autograd"  # the original is not touched
    assert [m.filter_impl for m in module.modules() if hasattr(m, "filter_impl")] == ["traceable"]
    with torch.no_grad():
        out = net.eval()(lr)
        got = module(lr)
    for name, value in zip(("sr", "kernel", "noise"), got, strict=True):
        torch.testing.assert_close(value, getattr(out, name), rtol=0, atol=1e-6)


def test_export_release_dynamic_sizes_metadata_and_parity(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    release = make_release(tmp_path / "tiny.safetensors")
    out = tmp_path / "sub" / "tiny.onnx"
    result = zoo_onnx.export_model(release, out, shapes=SHAPES, trace_shape=TRACE)

    assert result.path == out and out.is_file() and not list(out.parent.glob(".*tmp"))
    assert result.outputs == ("sr", "kernel", "noise") and result.exporter == "legacy" and result.opset == 17
    assert [r.shape for r in result.parity] == list(SHAPES)
    for r in result.parity:
        assert set(r.max_abs_diff) == {"sr", "kernel", "noise"}
        assert r.passed(1e-4), r.text()

    meta = zoo_onnx.read_onnx_metadata(out)
    assert meta["name"] == "tiny" and meta["scale"] == "2" and meta["arch"] == "dmsr"
    assert json.loads(meta["arch_kwargs"]) == tiny_dmsr_kwargs()
    assert meta["blindsr_version"] and meta["source_sha256"] == sha256_file(release)

    # dynamic batch, height and width in the graph's signature; the kernel keeps its static k x k
    session = zoo_onnx.onnx_session(out, threads=1)
    (lr_info,) = session.get_inputs()
    assert lr_info.name == "lr" and lr_info.shape[1] == 3 and all(isinstance(d, str) for d in lr_info.shape[::2])
    shapes = {o.name: o.shape for o in session.get_outputs()}
    assert shapes["kernel"][1:] == [15, 15]

    # one more size, by hand, against the model loaded the usual way
    lr = torch.rand(3, 3, 11, 30)
    sr, kernel, noise = session.run(None, {"lr": lr.numpy()})
    with torch.no_grad():
        ref = load_model(release).model(lr)
    assert sr.shape == (3, 3, 22, 60) and kernel.shape == (3, 15, 15) and noise.shape == (3, 3, 11, 30)
    torch.testing.assert_close(torch.from_numpy(sr), ref.sr, rtol=0, atol=1e-4)


def test_parity_failure_leaves_the_target_untouched(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    release = make_release(tmp_path / "tiny.safetensors", kernel_size=7)
    out = tmp_path / "tiny.onnx"
    out.write_text("previous")
    with pytest.raises(zoo_onnx.OnnxParityError, match="parity check failed") as info:
        zoo_onnx.export_model(release, out, shapes=SHAPES[:1], trace_shape=TRACE, tolerance=1e-15)
    assert len(info.value.results) == 1
    assert out.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == [
        "tiny.onnx",
        "tiny.safetensors",
    ]


def test_bad_arguments(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    release = make_release(tmp_path / "tiny.safetensors", kernel_size=7)
    with pytest.raises(ValueError, match="opsets 17-20"):
        zoo_onnx.export_model(release, tmp_path / "x.onnx", opset=13, check=False)
    with pytest.raises(KeyError, match="unknown model"):
        zoo_onnx.export_model("dmsr-x9", tmp_path / "x.onnx", check=False)
    assert not (tmp_path / "x.onnx").exists()


def test_missing_dependency_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(zoo_onnx.OnnxDependencyError, match=r"onnxruntime.*pip install -e '\.\[export\]'"):
        zoo_onnx.require_onnx()
    pytest.importorskip("onnx")
    zoo_onnx.require_onnx(runtime=False)  # the exporter alone does not need onnxruntime
