"""What an architecture descriptor holds, and the inference-adapter protocol it plugs into.

An :class:`Architecture` gathers every fact the rest of the package needs about one network family: its id (the
``arch`` of release files and cards), its constructor, how a release file's flat ``arch_kwargs`` become the
constructor's arguments, how it runs tiled (its :class:`InferenceAdapter`), what its ONNX export needs, and a tiny
instance for the per-architecture tests. ``blindsr.archs`` lists them in one literal registry.

Inference adapters. A blind-SR network estimates the degradation of its input and restores the image with that
estimate. Run naively on tiles, it would estimate a different degradation per tile (seams, inconsistent results).
An adapter splits the network in the two phases :class:`~blindsr.inference.Upscaler` drives:

1. ``estimate(image)``: the degradation of the **whole** image, from all its tiles (or from a downscaled copy);
2. ``restore_tile(window, tile, state)``: one tile's restoration with that shared estimate.

Architectures whose output depends only on their input window (``toy_sr``, MRDA's MLN) keep the default,
:class:`PlainAdapter`: a plain forward per window. A new adapter is one class with ``estimate``, ``restore_tile``
and ``degradation``; ``blindsr.archs.mrda.MRDAAdapter`` is the shortest example.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor, nn

from blindsr.ops.tiling import Tile, window

__all__ = [
    "Architecture",
    "Degradation",
    "InferenceAdapter",
    "PlainAdapter",
    "TileOutput",
    "TiledImage",
]

StateT = TypeVar("StateT")


@dataclass(frozen=True, eq=False)
class TiledImage:
    """One LR image and its tile plan, as an adapter's ``estimate`` sees it.

    Attributes:
        image: (1, 3, h, w) float32 RGB in [0, 1], wherever the caller keeps it (normally the CPU: a whole image is
            never uploaded to the accelerator at once when it is tiled).
        tiles: the plan (:func:`blindsr.ops.tiling.plan_tiles`); one tile covering everything when untiled.
        device: where the network runs.
    """

    image: Tensor
    tiles: tuple[Tile, ...]
    device: torch.device

    @property
    def height(self) -> int:
        """h."""
        return int(self.image.shape[-2])

    @property
    def width(self) -> int:
        """w."""
        return int(self.image.shape[-1])

    def windows(self) -> Iterator[tuple[Tile, Tensor]]:
        """Each tile with its window (1, 3, h_win, w_win), moved to :attr:`device` one at a time."""
        for tile in self.tiles:
            yield tile, window(self.image, tile).to(self.device, torch.float32)


@dataclass(frozen=True, eq=False)
class TileOutput:
    """What an adapter returns for one window.

    Attributes:
        sr: (1, 3, s·h_win, s·w_win) the restored window.
        noise: (1, 3, h_win, w_win) a per-pixel degradation map at LR size (DMSR's noise estimate), or None.
    """

    sr: Tensor
    noise: Tensor | None = None


@dataclass(frozen=True, eq=False)
class Degradation:
    """The whole-image degradation estimate, for the user.

    Attributes:
        kernel: (k, k) float32 blur kernel on the CPU (DMSR), or None.
        idr: (d,) float32 implicit degradation representation on the CPU (MRDA), or None.
    """

    kernel: Tensor | None = None
    idr: Tensor | None = None


class InferenceAdapter(Protocol[StateT]):
    """Runs one architecture in the two phases of tiled blind SR (see the module docstring)."""

    def estimate(self, image: TiledImage) -> StateT:
        """The degradation state of the whole image, shared by all its tiles (runs under no_grad and autocast)."""
        ...

    def restore_tile(self, window: Tensor, tile: Tile, state: StateT) -> TileOutput:
        """Restore one window (1, 3, h_win, w_win), already on the device, with the shared state."""
        ...

    def degradation(self, state: StateT) -> Degradation:
        """The user-facing part of the state (kernel, IDR), on the CPU."""
        ...


class PlainAdapter:
    """Any SR network, one plain forward per window (its ``.sr`` when the output has one); no degradation."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def estimate(self, image: TiledImage) -> None:
        """Nothing to estimate."""
        return None

    def restore_tile(self, window: Tensor, tile: Tile, state: None) -> TileOutput:
        """``model(window)``."""
        out = self.model(window)
        sr = getattr(out, "sr", out)
        if not isinstance(sr, Tensor):
            raise TypeError(f"{type(self.model).__name__} returned {type(out).__name__}, not a tensor or .sr")
        return TileOutput(sr=sr)

    def degradation(self, state: None) -> Degradation:
        """No degradation estimate."""
        return Degradation()


def _as_given(arch_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The stored ``arch_kwargs`` are the constructor's keyword arguments as they are (a copy)."""
    return dict(arch_kwargs)


@dataclass(frozen=True, kw_only=True, eq=False)
class Architecture:
    """One architecture: everything the zoo, inference, the ONNX export and the tests need to know about it.

    Attributes:
        id: the architecture id: a key of ``blindsr.archs.ARCHITECTURES``, the ``arch`` of release files and cards.
        constructor: the network class; keyword-only, typed arguments.
        summary: one line: what the network is (paper component), for listings and the docs.
        tiny_kwargs: the stored ``arch_kwargs`` (flat JSON, as a release file keeps them) of a tiny instance with
            the real structure, for ``tests/archs/`` (read-only).
        constructor_kwargs: a release file's ``arch_kwargs`` → the constructor's keyword arguments (a new dict).
            Default: the same keys and values. Old files must keep loading: a renamed or regrouped argument is
            translated here, never in the files.
        adapter: ``adapter(model)`` → how the Upscaler runs the network tiled with one degradation estimate per
            image (default :class:`PlainAdapter`: a plain forward per window).
        prepare_export: applied to the copy of the network that the ONNX export traces (never the caller's
            network), to select export-friendly implementations; None when it traces as it is.
        lr_only: whether ``model(lr)`` super-resolves an LR image by itself (so ``blindsr upscale``, the web demo
            and the ONNX export can run it). False for a network that also needs side inputs (MRDA's teacher).
        onnx: whether ``blindsr export-onnx`` exports it and passes its parity check (``tests/archs/`` checks both
            ways, so a change of the exporters shows up there).
    """

    id: str
    constructor: Callable[..., nn.Module]
    summary: str
    tiny_kwargs: Mapping[str, Any]
    constructor_kwargs: Callable[[Mapping[str, Any]], dict[str, Any]] = _as_given
    adapter: Callable[[nn.Module], InferenceAdapter[Any]] = PlainAdapter
    prepare_export: Callable[[nn.Module], None] | None = None
    lr_only: bool = True
    onnx: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "tiny_kwargs", MappingProxyType(dict(self.tiny_kwargs)))

    def build(self, arch_kwargs: Mapping[str, Any]) -> nn.Module:
        """``constructor(**constructor_kwargs(arch_kwargs))``: the network a release file's ``arch_kwargs`` describe
        (randomly initialised; ``blindsr.zoo.load_model`` loads the weights)."""
        return self.constructor(**self.constructor_kwargs(arch_kwargs))
