"""Per-architecture adapters: how a network is run tile by tile with **one** degradation estimate per image.

A blind-SR network estimates the degradation of its input and restores the image with that estimate. Run naively
on tiles, it would estimate a different degradation per tile (seams, inconsistent results). An adapter splits the
network in the two phases :class:`~blindsr.inference.Upscaler` drives:

1. ``estimate(image)``: the degradation of the **whole** image, from all its tiles (or from a downscaled copy);
2. ``restore_tile(window, tile, state)``: one tile's restoration with that shared estimate.

Architectures without an adapter (``toy_sr``, anything whose output depends only on its input window) get
:class:`PlainAdapter`: a plain forward per window.

Adding an architecture is one class (``estimate``, ``restore_tile``, ``degradation``) and one line in
:data:`ADAPTERS`; :class:`MRDAAdapter` is the shortest example.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar

import torch
from torch import Tensor, nn

from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.layers.rcan import ChannelAttention
from blindsr.nets.mrda import MRDAStudent
from blindsr.ops.tiling import Tile, crop_core, window

__all__ = [
    "ADAPTERS",
    "ATTENTION_PASSES",
    "DMSRAdapter",
    "DMSRState",
    "Degradation",
    "GlobalChannelAttention",
    "InferenceAdapter",
    "MRDAAdapter",
    "MRDA_IDR_PIXELS",
    "PlainAdapter",
    "TileOutput",
    "TiledImage",
    "adapter_for",
]

StateT = TypeVar("StateT")

ATTENTION_PASSES: Final = 2
"""Recording passes for whole-image channel-attention statistics (see :class:`GlobalChannelAttention`)."""


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


class GlobalChannelAttention:
    """Makes every RCAN channel attention of a network gate each tile with **whole-image** statistics.

    Channel attention (squeeze-and-excitation) scales each feature channel by a function of its mean over the
    image. Run on a tile, it sees the tile's mean instead, and tiles of different content get visibly different
    gates (up to 23/255 on RealSRSet with the shipped DMSR model and 64-px tiles). The whole-image mean of a layer's
    input is the area-weighted sum of its tiles' core means, which is collected the same way as DMSR's blur logits:

    - ``record(tile)``: while the body runs on a window, add each layer's input summed over the tile's core;
    - ``finish(height, width)``: turn the sums into means, used by every later forward (``apply``);
    - inside ``hooks()``, each layer's output is recomputed as ``x · weights(mean)`` when means are set.

    A layer's input depends on the gates of the layers before it, so one recording pass with tile-local gates gives
    exact means for the first layer only; each further pass, run with the previous pass's means, makes the means
    of one more layer exact and the others closer. :class:`DMSRAdapter` runs two passes.

    Args:
        model: any network; its :class:`~blindsr.nets.layers.rcan.ChannelAttention` modules are the layers.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, ChannelAttention)]
        self.means: list[Tensor] | None = None
        self._sums: list[Tensor | None] = [None] * len(self.layers)
        self._tile: Tile | None = None
        self._thread: int | None = None

    def __len__(self) -> int:
        return len(self.layers)

    @contextlib.contextmanager
    def hooks(self) -> Iterator[None]:
        """Forward hooks on every layer (recording and/or applying), removed on exit.

        The hooks act only in the thread that entered this context, so a network shared between threads (a web
        server's worker pool) is not affected by another thread's tiled run.
        """
        self._thread = threading.get_ident()
        handles = [layer.register_forward_hook(self._hook(i)) for i, layer in enumerate(self.layers)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextlib.contextmanager
    def record(self, tile: Tile) -> Iterator[None]:
        """Add the layers' inputs summed over `tile`'s core (the forward must run on its window)."""
        self._tile = tile
        try:
            yield
        finally:
            self._tile = None

    def finish(self, height: int, width: int) -> None:
        """Recorded sums → means over the ``height × width`` image (applied from now on); sums reset."""
        if any(s is None for s in self._sums):
            raise RuntimeError("finish() before every channel-attention layer was recorded")
        self.means = [(s / float(height * width))[:, :, None, None] for s in self._sums if s is not None]
        self._sums = [None] * len(self.layers)

    def _hook(self, index: int) -> Callable[[nn.Module, tuple[Any, ...], Tensor], Tensor | None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor | None:
            if threading.get_ident() != self._thread:
                return None
            x = args[0]
            if self._tile is not None:
                core = crop_core(x, self._tile).float().sum(dim=(2, 3))
                previous = self._sums[index]
                self._sums[index] = core if previous is None else previous + core
            if self.means is None:
                return None
            assert isinstance(module, ChannelAttention)
            result: Tensor = x * module.weights(self.means[index].to(device=x.device, dtype=x.dtype))
            return result

        return hook


@dataclass(eq=False)
class DMSRState:
    """DMSR's shared estimate: the kernel of the whole image, and each window's noise map (computed once, with the
    kernel, from the same extractor trunk).

    Attributes:
        kernel: (1, k, k) float32, on the device.
        noise: tile index → (1, 3, h_win, w_win) noise map of its window (on the CPU when there are several tiles).
        attention: whole-image channel-attention statistics of the RCAN body (several tiles only), or None.
    """

    kernel: Tensor
    noise: dict[int, Tensor] = field(default_factory=dict)
    attention: GlobalChannelAttention | None = None


class DMSRAdapter:
    """DMSR: ``K_est`` pooled over the whole image, ``N_est`` and the SR branch per tile.

    The extractor's blur branch ends in a global average pool. ``estimate`` runs the extractor's trunk and blur
    branch on every window, sums the pre-pool map (B, k², h_win, w_win) over the tile's **core**, adds the sums and
    divides by h·w: the whole-image pool, area-weighted over the tiles. Each core pixel is computed from its
    window, which holds ``tile_pad`` pixels of context around the core; the blur branch sees 15×15 LR pixels
    (radius 7), so with ``tile_pad ≥ 7`` this *is* the whole-image pool (up to float summation order), and with
    less context it differs only by border context. The softmax of the pooled logits is ``K_est``.

    The noise branch is local (13×13 receptive field), so each window's noise map comes from the same trunk pass
    and is cropped to its core.

    The RCAN body's channel attention pools over its input too. With several tiles, ``estimate`` then runs the SR
    branch's LR part (``DMSRNet.features``, without the upsampler and the MBMs) over all windows
    :data:`ATTENTION_PASSES` times to collect whole-image channel means (:class:`GlobalChannelAttention`), and
    ``restore_tile`` gates every tile with them. On RealSRSet with the shipped ``dmsr-x4`` model and 64-px tiles
    this takes the largest difference to the whole-image output from 23/255 (tile-local gates) to 0.14/255 (one
    pass: 1.8/255), for about 40 % more compute.

    ``restore_tile`` runs ``DMSRNet.restore(window, K_est, N_est_window)``. With ``noise_input="sigma"`` (the MNM-σ
    ablation), σ is computed per window, not per image.
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, DMSRNet):
            raise TypeError(f"DMSRAdapter needs a DMSRNet, got {type(model).__name__}")
        self.net = model

    def estimate(self, image: TiledImage) -> DMSRState:
        """Pooled blur logits over all tile cores → ``K_est``; each window's noise map kept for ``restore_tile``."""
        extractor = self.net.extractor
        keep_on_device = len(image.tiles) == 1
        total: Tensor | None = None
        noise: dict[int, Tensor] = {}
        for tile, lr in image.windows():
            feats = extractor.features(lr)
            window_noise = extractor.noise(feats)
            noise[tile.index] = window_noise if keep_on_device else window_noise.cpu()
            core_sum = crop_core(extractor.blur_map(feats), tile).float().sum(dim=(2, 3))
            total = core_sum if total is None else total + core_sum
        assert total is not None
        logits = total / float(image.height * image.width)
        state = DMSRState(kernel=extractor.kernel_from_logits(logits).float(), noise=noise)
        attention = GlobalChannelAttention(self.net)
        if len(image.tiles) > 1 and len(attention):
            with attention.hooks():
                for _ in range(ATTENTION_PASSES):
                    for tile, lr in image.windows():
                        with attention.record(tile):
                            self.net.features(lr, state.noise[tile.index].to(lr.device, lr.dtype))
                    attention.finish(image.height, image.width)
            state.attention = attention
        return state

    def restore_tile(self, window: Tensor, tile: Tile, state: DMSRState) -> TileOutput:
        """``restore(window, K_est, N_est)`` with the shared kernel (and channel statistics) and the window's noise."""
        noise = state.noise.pop(tile.index).to(window.device)  # popped: each window is restored once
        hooks = state.attention.hooks() if state.attention is not None else contextlib.nullcontext()
        with hooks:
            out = self.net.restore(window, state.kernel.to(window.dtype), noise.to(window.dtype))
        return TileOutput(sr=out.sr, noise=noise)

    def degradation(self, state: DMSRState) -> Degradation:
        """The kernel (k, k)."""
        return Degradation(kernel=state.kernel[0].detach().float().cpu())


MRDA_IDR_PIXELS: Final = 1 << 20
"""Largest LR image (pixels) whose IDR is computed at full size; larger ones use a bicubic-downscaled copy."""


class MRDAAdapter:
    """MRDA's student: the IDR ``D_S = DEN_S(lr)`` once per image, then ``RDAN_S(window, D_S)`` per tile.

    DEN_S ends in a global average pool over strided features, so the IDR is computed on the whole image in one
    pass (up to :data:`MRDA_IDR_PIXELS` LR pixels; a larger image is first shrunk with MATLAB bicubic to that size,
    which also shrinks its blur: a documented approximation). RDAN_S is local given the IDR (its dynamic kernels
    come from the IDR, RDAM is a 1×1 map), so tiles with ``tile_pad`` of context match the whole image.
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, MRDAStudent):
            raise TypeError(f"MRDAAdapter needs an MRDAStudent, got {type(model).__name__}")
        self.net = model

    def estimate(self, image: TiledImage) -> Tensor:
        """``DEN_S`` of the whole image (or of its downscaled copy): (1, d) on the device."""
        lr = image.image
        pixels = image.height * image.width
        if pixels > MRDA_IDR_PIXELS:
            from blindsr.ops.resize import imresize

            factor = (MRDA_IDR_PIXELS / pixels) ** 0.5
            size = (max(8, round(image.height * factor)), max(8, round(image.width * factor)))
            lr = imresize(lr.float(), size=size).clamp(0.0, 1.0)
        idr: Tensor = self.net.den(lr.to(image.device, torch.float32))
        return idr

    def restore_tile(self, window: Tensor, tile: Tile, state: Tensor) -> TileOutput:
        """``RDAN_S(window, IDR)``."""
        return TileOutput(sr=self.net.rdan(window, state.to(window.dtype)))

    def degradation(self, state: Tensor) -> Degradation:
        """The IDR (d,)."""
        return Degradation(idr=state[0].detach().float().cpu())


ADAPTERS: Final[Mapping[str, Callable[[nn.Module], InferenceAdapter[Any]]]] = {
    "dmsr": DMSRAdapter,
    "mrda_s": MRDAAdapter,
}
"""Architecture id (``blindsr.nets.ARCHS`` key) → adapter; the others get :class:`PlainAdapter`."""


def adapter_for(arch: str, model: nn.Module) -> InferenceAdapter[Any]:
    """The adapter of an architecture (:data:`ADAPTERS`), or :class:`PlainAdapter`."""
    factory = ADAPTERS.get(arch)
    return factory(model) if factory is not None else PlainAdapter(model)
