"""Every registered architecture, from its descriptor alone (blindsr.archs): built, run tiled, saved, exported.

A new entry of ``ARCHITECTURES`` is picked up here without a test of its own: its ``tiny_kwargs`` say how to build a
small instance, ``lr_only`` whether it runs on an LR image by itself, ``onnx`` whether it exports.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from blindsr.archs import (
    ARCHITECTURES,
    ARCHS,
    Architecture,
    Degradation,
    TiledImage,
    TileOutput,
    adapter_for,
    architecture_of,
    constructor_kwargs,
    get_architecture,
)
from blindsr.ops.tiling import merge_tiles, plan_tiles
from blindsr.zoo import load_model, save_release
from blindsr.zoo.cards import MODEL_CARDS

IDS = sorted(ARCHITECTURES)
LR_ONLY = [key for key in IDS if ARCHITECTURES[key].lr_only]
TINY_PARAMETERS = 200_000  # "tiny": a test instance builds and runs in milliseconds
BOUND = 2 / 255  # tiled vs whole image (the Upscaler's acceptance bound)


def _net(arch: Architecture) -> nn.Module:
    torch.manual_seed(0)
    return arch.build(arch.tiny_kwargs).eval()


def _lr(h: int = 21, w: int = 26, batch: int = 1) -> Tensor:
    return torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(1))


def _sr(out: Any) -> Tensor:
    sr = getattr(out, "sr", out)
    assert isinstance(sr, Tensor)
    return sr


def _scale(arch: Architecture) -> int:
    return int(arch.tiny_kwargs["scale"])


# ------------------------------------------------------------------------------------------------------ the registry


def test_the_registry_is_consistent() -> None:
    assert set(ARCHS) == set(ARCHITECTURES)
    for key, arch in ARCHITECTURES.items():
        assert arch.id == key and ARCHS[key] is arch.constructor and arch.summary
        assert get_architecture(key) is arch
    assert {card.arch for card in MODEL_CARDS} <= set(ARCHITECTURES)
    with pytest.raises(KeyError, match="did you mean 'dmsr'"):
        get_architecture("dmrs")
    with pytest.raises(KeyError, match="unknown architecture"):
        constructor_kwargs("nope", {})
    constructors = [arch.constructor for arch in ARCHITECTURES.values()]
    assert len(set(constructors)) == len(constructors)  # architecture_of is unambiguous


def test_descriptors_are_frozen() -> None:
    arch = ARCHITECTURES["toy_sr"]
    with pytest.raises(AttributeError):
        arch.onnx = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        arch.tiny_kwargs["scale"] = 4  # type: ignore[index]


# -------------------------------------------------------------------------------------------- per architecture


@pytest.mark.parametrize("key", IDS)
def test_builds_a_tiny_instance_with_a_keyword_only_constructor(key: str) -> None:
    arch = ARCHITECTURES[key]
    params = inspect.signature(arch.constructor).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), f"{key}: constructor not keyword-only"
    net = _net(arch)
    assert type(net) is arch.constructor and architecture_of(net) is arch
    assert 0 < sum(p.numel() for p in net.parameters()) < TINY_PARAMETERS


@pytest.mark.parametrize("key", IDS)
def test_round_trips_through_a_release_file_strictly(key: str, tmp_path: Path) -> None:
    arch = ARCHITECTURES[key]
    net = _net(arch)
    path = tmp_path / f"{key}.safetensors"
    save_release(net, path, arch=key, arch_kwargs=dict(arch.tiny_kwargs), scale=_scale(arch), half=False)
    loaded = load_model(path)  # strict: every key and shape
    assert loaded.arch == key and dict(loaded.arch_kwargs) == dict(arch.tiny_kwargs) and loaded.scale == _scale(arch)
    assert type(loaded.model) is arch.constructor
    want, got = net.state_dict(), loaded.model.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    if arch.lr_only:
        lr = _lr()
        with torch.no_grad():
            assert torch.equal(_sr(loaded.model(lr)), _sr(net(lr)))
            assert loaded.upscale(lr, _scale(arch)).shape == (1, 3, 21 * _scale(arch), 26 * _scale(arch))


@pytest.mark.parametrize("key", LR_ONLY)
def test_its_adapter_runs_tiled_like_the_whole_image(key: str) -> None:
    arch = ARCHITECTURES[key]
    net = _net(arch)
    s = _scale(arch)
    adapter = arch.adapter(net)
    assert type(adapter_for(key, net)) is type(adapter)
    cpu = torch.device("cpu")
    with torch.no_grad():
        # one tile: the two phases recombine to the plain forward
        lr = _lr()
        h, w = lr.shape[-2:]
        one = TiledImage(image=lr, tiles=plan_tiles(h, w, tile=None, pad=0), device=cpu)
        state = adapter.estimate(one)
        (tile,) = one.tiles
        out = adapter.restore_tile(lr, tile, state)
        assert isinstance(out, TileOutput) and out.sr.shape == (1, 3, s * h, s * w)
        forward = net(lr)
        torch.testing.assert_close(out.sr, _sr(forward), rtol=0, atol=1e-5)
        whole = adapter.degradation(state)
        assert isinstance(whole, Degradation)
        for name in ("kernel", "idr"):  # what the network estimates, the adapter reports (a plain one reports nothing)
            estimated = getattr(forward, name, None)
            if isinstance(estimated, Tensor):
                assert getattr(whole, name) is not None, f"{key} estimates its {name}, its adapter does not report it"
                torch.testing.assert_close(getattr(whole, name), estimated[0].float(), rtol=0, atol=1e-5)

        # tiles whose windows see part of the image only: one estimate per image, and the whole image's output
        lr = _lr(40, 52)
        h, w = lr.shape[-2:]
        expected = _sr(net(lr))
        tiled = TiledImage(image=lr, tiles=plan_tiles(h, w, tile=12, pad=8), device=cpu)
        assert len(tiled.tiles) > 4
        assert all(t.win_bottom - t.win_top < h and t.win_right - t.win_left < w for t in tiled.tiles)
        state = adapter.estimate(tiled)
        outputs = [adapter.restore_tile(win, t, state).sr for t, win in tiled.windows()]
        merged = merge_tiles(outputs, tiled.tiles, height=h, width=w, scale=s)
        estimate = adapter.degradation(state)
        reference = adapter.degradation(
            adapter.estimate(TiledImage(image=lr, tiles=plan_tiles(h, w, tile=None, pad=0), device=cpu))
        )
    assert merged.shape == expected.shape
    assert float((merged - expected).abs().max()) <= BOUND
    for name in ("kernel", "idr"):
        got, want = getattr(estimate, name), getattr(reference, name)
        assert (got is None) == (want is None) == (getattr(whole, name) is None), name
        if want is not None:
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def _attributes(model: nn.Module) -> dict[str, dict[str, Any]]:
    """The plain (non-tensor, non-module) attributes of every submodule: what an export preparation may switch."""
    return {
        name: {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"}
        for name, m in model.named_modules()
    }


@pytest.mark.parametrize("key", LR_ONLY)
def test_its_export_preparation_keeps_the_outputs_and_leaves_the_model_alone(key: str) -> None:
    from blindsr.zoo.onnx import exportable_module, output_names

    arch = ARCHITECTURES[key]
    net = _net(arch)
    before = _attributes(net)
    lr = _lr(batch=2)
    names = output_names(net, lr)
    module = exportable_module(net, names, arch=key)
    assert _attributes(net) == before  # the preparation acts on a copy
    by_class = exportable_module(net, names)  # the architecture found from the network's class
    assert _attributes(by_class) == _attributes(module)
    with torch.no_grad():
        out = net(lr)
        got = module(lr)
    assert names[0] == "sr" and len(got) == len(names)
    for name, value in zip(names, got, strict=True):
        reference = out if isinstance(out, Tensor) else getattr(out, name)
        torch.testing.assert_close(value, reference, rtol=0, atol=1e-6)
    if arch.prepare_export is not None:
        prepared = _attributes(module.get_submodule("net"))
        assert prepared != before, f"{key}: prepare_export changed nothing"


@pytest.mark.parametrize(
    "key", [pytest.param(k, marks=pytest.mark.slow) if ARCHITECTURES[k].onnx else k for k in LR_ONLY]
)
def test_onnx_export_succeeds_exactly_where_the_descriptor_says(key: str, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from blindsr.zoo.onnx import OnnxExportError, export_onnx

    arch = ARCHITECTURES[key]
    net = _net(arch)
    kwargs: dict[str, Any] = {"shapes": ((1, 3, 19, 23), (2, 3, 12, 14)), "trace_shape": (1, 3, 16, 20), "arch": key}
    if not arch.onnx:
        with pytest.raises(OnnxExportError):
            export_onnx(net, tmp_path / f"{key}.onnx", **kwargs)
        return  # if this export starts to work (new exporters), set onnx=True in the descriptor
    result = export_onnx(net, tmp_path / f"{key}.onnx", **kwargs)
    assert result.parity and all(r.passed(result.tolerance) for r in result.parity)
