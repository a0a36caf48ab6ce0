"""Model cards: what a user-facing model name means (architecture, hyper-parameters, weights file, provenance).

Names follow ``<method>[-<role>]-x<scale>[.<tag>]`` (docs/design.md §5): ``dmsr-x4``, ``dmsr-x4.nf``,
``mrda-teacher-x4.iso``. The tag names the training degradation preset; a name without a tag means the first card
listed for that base name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["ModelCard", "ModelName", "parse_model_name"]

_NAME = re.compile(
    r"^(?P<method>[a-z][a-z0-9]*)(?:-(?P<role>[a-z][a-z0-9]*))?-x(?P<scale>[1-9][0-9]*)"
    r"(?:\.(?P<tag>[a-z0-9]+(?:-[a-z0-9]+)*))?$"
)


class ModelName(NamedTuple):
    """A parsed model name: ``<method>[-<role>]-x<scale>[.<tag>]``.

    Attributes:
        method: e.g. ``"dmsr"``.
        role: e.g. ``"teacher"``, or ``""`` when omitted.
        scale: the integer after ``-x``.
        tag: the training preset tag, or ``""`` when omitted.
    """

    method: str
    role: str
    scale: int
    tag: str

    @property
    def base(self) -> str:
        """The name without its tag (``dmsr-x4.nf`` → ``dmsr-x4``)."""
        role = f"-{self.role}" if self.role else ""
        return f"{self.method}{role}-x{self.scale}"


def parse_model_name(name: str) -> ModelName:
    """Split a model name into its parts.

    Args:
        name: ``<method>[-<role>]-x<scale>[.<tag>]``, lower case.

    Returns:
        The parts; ``role`` and ``tag`` are ``""`` when absent.

    Raises:
        ValueError: `name` does not follow the grammar.

    >>> parse_model_name("dmsr-x4.nf")
    ModelName(method='dmsr', role='', scale=4, tag='nf')
    >>> parse_model_name("mrda-teacher-x4.iso").base
    'mrda-teacher-x4'
    """
    match = _NAME.match(name)
    if match is None:
        raise ValueError(
            f"model name {name!r} does not follow <method>[-<role>]-x<scale>[.<tag>] "
            "(e.g. 'dmsr-x4', 'dmsr-x4.nf', 'mrda-teacher-x4.iso')"
        )
    return ModelName(match["method"], match["role"] or "", int(match["scale"]), match["tag"] or "")


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One released model: the name users type, how to build it, which file holds its weights, and provenance.

    Attributes:
        name: ``<method>[-<role>]-x<scale>[.<tag>]``, e.g. ``"dmsr-x4.iso-noise"``.
        arch: key into :data:`blindsr.archs.ARCHITECTURES`.
        arch_kwargs: exactly the keyword arguments of the architecture's constructor (stored read-only).
        scale: the upscaling factor; must equal the name's ``x<scale>`` (and ``arch_kwargs["scale"]`` if present).
        weights: file name inside ``blindsr/zoo/weights/`` (or ``$BLINDSR_HOME/weights/``).
        sha256: hex digest of the weights file, as printed by ``blindsr export``.
        description: one line for ``blindsr models``: what the model is and what it is blind to.
        train_config: the YAML the weights were trained with, relative to the repository root.
        degradation: the training degradation preset name.
        paper: the paper (and table/row) the model reproduces.
        license: the licence of the weights.
        trained: one short line on the training the weights actually had (honest, not the paper's); the full
            record (stages, steps, dates, machine) is the model's section of docs/models.md.
        noise_free_variant: the card that scores this model's noise-free cells in evaluation (DMSR Table 1 reports
            its [0.2, 0] row with DMSR-nf, a fine-tune with the noise fixed at 0); ``""`` for none.
        kernel_estimate_r: how well the model's blur-kernel estimate follows the true blur: Pearson's r of true and
            estimated kernel widths, as ``blindsr analyze kernels`` measures it on Set5 with its default grid
            (6 widths x noise 0/15/50); None when not measured or
            when the model estimates no kernel. ``blindsr upscale --save-degradation`` quotes it next to the
            estimated blur width.
        kernel_estimate_source: the command and date `kernel_estimate_r` was measured with; ``""`` when None.
    """

    name: str
    arch: str
    arch_kwargs: Mapping[str, Any] = field(hash=False)
    scale: int
    weights: str
    sha256: str
    description: str = ""
    train_config: str = ""
    degradation: str = ""
    paper: str = ""
    license: str = ""
    trained: str = ""
    noise_free_variant: str = ""
    kernel_estimate_r: float | None = None
    kernel_estimate_source: str = ""
    _parsed: ModelName = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = parse_model_name(self.name)
        if parsed.scale != self.scale:
            raise ValueError(f"card {self.name!r}: the name says x{parsed.scale} but scale={self.scale}")
        kwargs_scale = self.arch_kwargs.get("scale", self.scale)
        if kwargs_scale != self.scale:
            raise ValueError(f"card {self.name!r}: arch_kwargs['scale']={kwargs_scale} but scale={self.scale}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"card {self.name!r}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        if "/" in self.weights or "\\" in self.weights or not self.weights.endswith(".safetensors"):
            raise ValueError(
                f"card {self.name!r}: weights must be a bare *.safetensors file name, got {self.weights!r}"
            )
        if self.noise_free_variant:
            variant = parse_model_name(self.noise_free_variant)
            if variant.scale != self.scale or variant.base != parsed.base:
                raise ValueError(
                    f"card {self.name!r}: noise_free_variant {self.noise_free_variant!r} must be a {parsed.base}.* card"
                )
        r = self.kernel_estimate_r
        if r is not None and (isinstance(r, bool) or not math.isfinite(r) or not -1.0 <= r <= 1.0):
            raise ValueError(f"card {self.name!r}: kernel_estimate_r must be in [-1, 1] or None, got {r!r}")
        if (r is None) != (not self.kernel_estimate_source):
            raise ValueError(f"card {self.name!r}: give kernel_estimate_r and kernel_estimate_source together")
        object.__setattr__(self, "arch_kwargs", MappingProxyType(dict(self.arch_kwargs)))
        object.__setattr__(self, "_parsed", parsed)

    @property
    def base_name(self) -> str:
        """The name without its tag: the alias that resolves to the first card listed with this base."""
        return self._parsed.base

    @property
    def tag(self) -> str:
        """The tag after the dot (the training preset), or ``""``."""
        return self._parsed.tag

    def kernel_estimate_reliability(self) -> str | None:
        """One phrase on how far the blur estimate can be trusted, from `kernel_estimate_r`; None when unmeasured.

        Below r = 0.5 the estimate does not track the true blur; from 0.5 to 0.9 it follows it roughly; from 0.9 on
        it tracks it (thresholds of this message, not of any paper).

        >>> card = ModelCard(name="toy-x2", arch="toy", arch_kwargs={}, scale=2, weights="t.safetensors",
        ...     sha256="0" * 64, kernel_estimate_r=0.106, kernel_estimate_source="blindsr analyze kernels ...")
        >>> card.kernel_estimate_reliability()
        "this model's estimate does not track the true blur: r = 0.11 on Set5"
        """
        r = self.kernel_estimate_r
        if r is None:
            return None
        verdict = "does not track" if r < 0.5 else "follows only roughly" if r < 0.9 else "tracks"
        return f"this model's estimate {verdict} the true blur: r = {r:.2f} on Set5"
