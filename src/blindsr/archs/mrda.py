"""MRDA's three networks as architectures: the student ``mrda_s``, the teacher ``mrda_t`` and the MLN ``mrda_mln``.

The networks are in ``blindsr.nets.mrda`` (paper ↔ code map there). What this module adds:

- :class:`MRDAAdapter`: the student's IDR ``D_S`` computed once per image, then RDAN_S per tile;
- :func:`gather_rdan_options`: how a release file's flat ``arch_kwargs`` become the teacher's and the student's
  constructor arguments (below);
- :func:`use_traceable_depthwise`: the student's ONNX export preparation (below);
- the descriptors :data:`MRDA_S`, :data:`MRDA_T`, :data:`MRDA_MLN`.

Stored arguments. A release file keeps how its network is built as one flat JSON object, ``arch_kwargs``. MRDA's
teacher and student take RDAN's architecture as one :class:`~blindsr.nets.mrda.RDANOptions` (``rdan_options=``);
their files keep the flat spelling, so every file written before that change (the shipped ``mrda-*`` models among
them) loads as it is, and a new export (``Method.release``) writes the same keys as before: the fields of
``RDANOptions`` beside the DEN's arguments::

    {"scale": 4, "n_feats": 32, "n_blocks": 6, "idr_dim": 128, "den_channels": 16, "kernel_size": 3, ...}
    -> {"scale": 4, "den_channels": 16, "rdan_options": RDANOptions(n_feats=32, n_blocks=6, idr_dim=128, ...)}

Nothing is renamed: the stored keys are the ``RDANOptions`` field names. (The state-dict side of the one rename,
MRDA_T3's ``kernel_encoder.*`` → ``blur_encoder.*``, is mapped by ``MRDATeacher`` itself when weights are loaded.)
The MLN's files store its keyword arguments as they are.

ONNX export (``Architecture.onnx``). The student exports: :func:`use_traceable_depthwise` switches the copy that
is traced to the traceable form of its dynamic depthwise convolution (the grouped convolution of training and
inference has ``groups = batch × channels``, which an ONNX graph cannot keep dynamic); the size checks of that
convolution run in eager mode only. The MLN does not: its bicubic skip is rounded to 1/255 (``skip_quantize``), and
any size-independent form of the skip differs from the matrix form by float32 rounding, which flips some of those
roundings (a 1/255 difference, far above the parity tolerance). The teacher is not ``lr_only``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Final

import torch
from torch import Tensor, nn

from blindsr.archs.base import Architecture, Degradation, TiledImage, TileOutput
from blindsr.nets.layers.dynamic_depthwise import DepthwiseBranch
from blindsr.nets.mrda import MetaLearningNetwork, MRDAStudent, MRDATeacher, RDANOptions
from blindsr.ops.tiling import Tile

__all__ = [
    "MRDA_IDR_PIXELS",
    "MRDA_MLN",
    "MRDA_S",
    "MRDA_T",
    "MRDAAdapter",
    "gather_rdan_options",
    "use_traceable_depthwise",
]

_RDAN_FIELDS: Final = tuple(f.name for f in fields(RDANOptions))


def gather_rdan_options(arch_kwargs: Mapping[str, Any], *, arch: str) -> dict[str, Any]:
    """MRDA_T's or MRDA_S's constructor arguments for a release file's flat ``arch_kwargs``.

    The keys named like :class:`~blindsr.nets.mrda.RDANOptions` fields become one ``rdan_options=RDANOptions(...)``
    (fields a file omits keep their defaults, as the old flat constructors did); every other key passes through, so
    a misspelt one still fails in the constructor. An ``arch_kwargs`` that already holds ``rdan_options`` (built in
    Python, not read from a file) is returned as a copy.

    Args:
        arch_kwargs: the file's ``arch_kwargs`` (flat JSON values).
        arch: ``"mrda_s"`` or ``"mrda_t"``, for the error message.

    Returns:
        A new dict, ready for the constructor.

    Raises:
        TypeError: both flat RDAN fields and an ``rdan_options`` entry.

    >>> gather_rdan_options({"scale": 2, "n_feats": 8, "den_channels": 4}, arch="mrda_s")["rdan_options"].n_feats
    8
    """
    kwargs = dict(arch_kwargs)
    rdan = {name: kwargs.pop(name) for name in _RDAN_FIELDS if name in kwargs}
    if "rdan_options" in kwargs:
        if rdan:
            raise TypeError(f"{arch}: give RDAN's fields flat ({', '.join(rdan)}) or as rdan_options, not both")
        return kwargs
    kwargs["rdan_options"] = RDANOptions(**rdan)
    return kwargs


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


def use_traceable_depthwise(module: nn.Module) -> None:
    """Make every :class:`~blindsr.nets.layers.dynamic_depthwise.DepthwiseBranch` in `module` apply its dynamic
    kernels as ``impl="traceable"`` (shifted slices and products instead of a convolution whose group count, batch ×
    channels, ONNX would freeze)."""
    for branch in module.modules():
        if isinstance(branch, DepthwiseBranch):
            branch.impl = "traceable"


MRDA_S: Final = Architecture(
    id="mrda_s",
    constructor=MRDAStudent,
    summary="MRDA_S, the deployed MRDA model: DEN_S (IDR from the LR image) + RDAN; lr -> MRDAOutput(sr, idr)",
    tiny_kwargs={"scale": 2, "n_feats": 8, "n_blocks": 2, "den_channels": 8, "idr_dim": 16},
    constructor_kwargs=functools.partial(gather_rdan_options, arch="mrda_s"),
    adapter=MRDAAdapter,
    prepare_export=use_traceable_depthwise,
    onnx=True,
)
"""``mrda_s``: ``MRDAStudent`` with RDAN's flat fields gathered, tiled with :class:`MRDAAdapter`, exported with
traceable depthwise convolutions."""

MRDA_T: Final = Architecture(
    id="mrda_t",
    constructor=MRDATeacher,
    summary="MRDA_T, the teacher: DEN_T on the adapted MLN's features (or T3's true blur kernel) + RDAN; "
    "(lr, features) -> MRDAOutput(sr, idr); training and oracle evaluation only",
    tiny_kwargs={"scale": 2, "n_feats": 8, "n_blocks": 2, "den_channels": 8, "idr_dim": 16, "mln_channels": 8},
    constructor_kwargs=functools.partial(gather_rdan_options, arch="mrda_t"),
    lr_only=False,
)
"""``mrda_t``: ``MRDATeacher`` with RDAN's flat fields gathered; it needs D′ (or blur kernels) beside the LR image."""

MRDA_MLN: Final = Architecture(
    id="mrda_mln",
    constructor=MetaLearningNetwork,
    summary="MRDA's meta-learning network (MLN): lr -> MLNOutput(sr, features), adapted per image by MAML",
    tiny_kwargs={"scale": 2, "n_feats": 8, "n_body": 1},
)
"""``mrda_mln``: ``MetaLearningNetwork(**arch_kwargs)``; local, so tiles run it as it is."""
