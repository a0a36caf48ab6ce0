"""Architectures: one descriptor per network family, in one literal registry.

LAYER 2 (between the networks and their users): imports ``nets`` and ``ops``; imported by ``zoo``, ``inference``,
``analysis`` and the CLI.

An :class:`Architecture` holds everything the package needs about one network: its id (the ``arch`` of release
files and cards), its constructor, the translation of a release file's flat ``arch_kwargs`` into the constructor's
arguments, its tiled-inference adapter, its ONNX export preparation, and a tiny instance for the tests. One module
per family holds the descriptors with the code they name:

- ``toy_sr`` (``toy.py``): ``nets.toy.ToySR``; a plain forward per tile.
- ``dmsr`` (``dmsr.py``): ``nets.dmsr.DMSRNet``; ``DMSRAdapter`` pools the blur kernel and the channel-attention
  statistics over all tiles; the ONNX export selects its traceable per-pixel filter.
- ``mrda_s``, ``mrda_t``, ``mrda_mln`` (``mrda.py``): ``nets.mrda.MRDAStudent`` (``MRDAAdapter``: one IDR per
  image), ``MRDATeacher`` (needs the adapted MLN's features or the true blur kernels: training and oracle
  evaluation only) and ``MetaLearningNetwork``; the student's and teacher's files store RDAN's fields flat.

Adding an architecture: its network in ``nets/``, a module here with its descriptor (and adapter, if tiles must
share a whole-image estimate), and one entry in :data:`ARCHITECTURES`; ``tests/archs/`` then builds, runs, saves and
reloads it, and checks its export, from the descriptor alone (``docs/design.md`` section 7).

>>> get_architecture("dmsr").constructor.__name__
'DMSRNet'
>>> constructor_kwargs("toy_sr", {"scale": 2})
{'scale': 2}
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, Final

from torch import nn

from blindsr.archs.base import (
    Architecture,
    Degradation,
    InferenceAdapter,
    PlainAdapter,
    TiledImage,
    TileOutput,
)
from blindsr.archs.dmsr import DMSR
from blindsr.archs.mrda import MRDA_MLN, MRDA_S, MRDA_T
from blindsr.archs.toy import TOY_SR

__all__ = [
    "ARCHITECTURES",
    "ARCHS",
    "Architecture",
    "Degradation",
    "InferenceAdapter",
    "PlainAdapter",
    "TileOutput",
    "TiledImage",
    "adapter_for",
    "architecture_of",
    "constructor_kwargs",
    "get_architecture",
]

ARCHITECTURES: Final[Mapping[str, Architecture]] = {
    "toy_sr": TOY_SR,
    "dmsr": DMSR,
    "mrda_s": MRDA_S,  # the deployed MRDA model: lr -> MRDAOutput(sr, idr)
    "mrda_t": MRDA_T,  # (lr, adapted-MLN features) -> MRDAOutput(sr, idr); training and oracle evaluation only
    "mrda_mln": MRDA_MLN,  # lr -> MLNOutput(sr, features)
}
"""Architecture id → descriptor. Read at call time by the functions below, so tests can add an entry."""

ARCHS: Final[Mapping[str, Callable[..., nn.Module]]] = {key: arch.constructor for key, arch in ARCHITECTURES.items()}
"""Architecture id → constructor (derived from :data:`ARCHITECTURES`)."""


def get_architecture(arch: str) -> Architecture:
    """The descriptor of an architecture id.

    Raises:
        KeyError: unknown id (the message lists the known ones and suggests the closest).
    """
    found = ARCHITECTURES.get(arch)
    if found is None:
        close = difflib.get_close_matches(arch, list(ARCHITECTURES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)}){hint}")
    return found


def architecture_of(model: nn.Module) -> Architecture | None:
    """The descriptor whose constructor built `model` (its exact class), or None (a wrapper, a foreign network)."""
    return next((a for a in ARCHITECTURES.values() if type(model) is a.constructor), None)


def constructor_kwargs(arch: str, arch_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A release file's flat ``arch_kwargs`` → the keyword arguments of the architecture's constructor (a new dict).

    ``get_architecture(arch).constructor_kwargs(arch_kwargs)``: MRDA's teacher and student gather RDAN's fields into
    an ``RDANOptions`` (:func:`blindsr.archs.mrda.gather_rdan_options`); the others take them as they are.

    Raises:
        KeyError: unknown architecture.
    """
    return get_architecture(arch).constructor_kwargs(arch_kwargs)


def adapter_for(arch: str, model: nn.Module) -> InferenceAdapter[Any]:
    """How :class:`~blindsr.inference.Upscaler` runs `model` tiled: its architecture's adapter, or
    :class:`PlainAdapter` for an id outside the registry."""
    found = ARCHITECTURES.get(arch)
    return found.adapter(model) if found is not None else PlainAdapter(model)
