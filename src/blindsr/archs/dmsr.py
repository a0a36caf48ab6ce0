"""DMSR as an architecture (``dmsr``): its descriptor, its tiled-inference adapter and its export preparation.

The network itself is ``blindsr.nets.dmsr.DMSRNet`` (paper ↔ code map there). What this module adds:

- :class:`DMSRAdapter`: one blur kernel ``K_est`` per image, pooled over all tiles, and whole-image channel-attention
  statistics for the RCAN body (:class:`GlobalChannelAttention`), so a tiled image matches the whole-image run;
- :func:`use_traceable_filters`: the ONNX export traces every meta-deblur module with the traceable form of its
  per-pixel filter (``MetaDeblur.filter_impl``; the training form is a custom autograd function the exporters
  cannot follow);
- :data:`DMSR`: the descriptor. Release files store DMSRNet's keyword arguments as they are.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from torch import Tensor, nn

from blindsr.archs.base import Architecture, Degradation, TiledImage, TileOutput
from blindsr.nets.dmsr import DMSRNet, MetaDeblur
from blindsr.nets.layers.rcan import ChannelAttention
from blindsr.ops.tiling import Tile, crop_core

__all__ = [
    "ATTENTION_PASSES",
    "DMSR",
    "DMSRAdapter",
    "DMSRState",
    "GlobalChannelAttention",
    "use_traceable_filters",
]

ATTENTION_PASSES: Final = 2
"""Recording passes for whole-image channel-attention statistics (see :class:`GlobalChannelAttention`)."""


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


def use_traceable_filters(module: nn.Module) -> None:
    """Make every :class:`~blindsr.nets.dmsr.MetaDeblur` in `module` run its per-pixel filter as
    ``impl="traceable"`` (the same sums written as plain slices and products, which both ONNX exporters follow)."""
    for mbm in module.modules():
        if isinstance(mbm, MetaDeblur):
            mbm.filter_impl = "traceable"


DMSR: Final = Architecture(
    id="dmsr",
    constructor=DMSRNet,
    summary="DMSR: degradation extractor (blur kernel, noise map) + RCAN body with meta-denoise/deblur modules",
    tiny_kwargs={
        "scale": 2,
        "n_feats": 8,
        "n_groups": 1,
        "n_blocks": 1,
        "reduction": 4,
        "extractor_channels": 8,
        "mbm_identity_init": False,  # a random meta-deblur, so its per-pixel filter really filters
    },
    adapter=DMSRAdapter,
    prepare_export=use_traceable_filters,
    onnx=True,
)
"""``dmsr``: ``DMSRNet(**arch_kwargs)``, tiled with :class:`DMSRAdapter`, exported with traceable filters."""
