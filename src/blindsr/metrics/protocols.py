"""Metric protocols: named, frozen descriptions of how PSNR/SSIM are computed.

"I can't reproduce the paper's PSNR" usually comes from one of these choices: Y versus RGB and MATLAB versus OpenCV
YCbCr move results by 0.5-2 dB, the border crop by about 0.1 dB. Every number blindsr reports names its protocol.

==================  ===========================================================================================
``sr-y``            the default of SR papers: 8-bit images, MATLAB BT.601 Y in float, crop = scale
``sr-y-uint8``      as ``sr-y`` with Y rounded to integers (MATLAB ``rgb2ycbcr`` of uint8 images; older tables)
``sr-y-nocrop``     as ``sr-y`` without the border crop
``rgb``             8-bit RGB, all channels, crop = scale
==================  ===========================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

__all__ = ["METRIC_PROTOCOLS", "MetricProtocol", "get_metric_protocol"]


@dataclass(frozen=True, slots=True)
class MetricProtocol:
    """How PSNR/SSIM are computed.

    Attributes:
        name: the protocol's name, recorded with every result.
        color: ``"y_bt601_matlab"`` (luma of MATLAB ``rgb2ycbcr``, 0-255, not rounded) or ``"rgb"`` (all three
            channels; SSIM is the mean over channels).
        crop_border: pixels removed on every side: ``"scale"`` (the SR factor) or a fixed number.
        quantize_uint8: round both images to 8 bits first (clamp, ``floor(255 x + 0.5)``), as saving a PNG would.
        round_y: round Y to integers, as MATLAB ``rgb2ycbcr`` does on a *uint8* image (the path of the older
            SelfExSR/VDSR evaluation scripts); the default keeps Y in float (MATLAB's double path, BasicSR).
        average: ``"per_image"``: a dataset score is the mean of per-image scores (never a pooled MSE).
    """

    name: str
    color: Literal["y_bt601_matlab", "rgb"] = "y_bt601_matlab"
    crop_border: Literal["scale"] | int = "scale"
    quantize_uint8: bool = True
    round_y: bool = False
    average: Literal["per_image"] = "per_image"

    def border(self, scale: int | None) -> int:
        """The number of border pixels to crop for `scale`."""
        if self.crop_border == "scale":
            if scale is None:
                raise ValueError(f"metric protocol {self.name!r} crops scale pixels: pass `scale`")
            return int(scale)
        return int(self.crop_border)


METRIC_PROTOCOLS: Final[Mapping[str, MetricProtocol]] = MappingProxyType(
    {
        "sr-y": MetricProtocol(name="sr-y"),
        "rgb": MetricProtocol(name="rgb", color="rgb"),
        "sr-y-nocrop": MetricProtocol(name="sr-y-nocrop", crop_border=0),
        "sr-y-uint8": MetricProtocol(name="sr-y-uint8", round_y=True),
    }
)


def get_metric_protocol(protocol: str | MetricProtocol) -> MetricProtocol:
    """Resolve a protocol name (``sr-y``, ``rgb``, ``sr-y-nocrop``, ``sr-y-uint8``) or pass a `MetricProtocol` through.

    >>> get_metric_protocol("sr-y").color
    'y_bt601_matlab'
    """
    if isinstance(protocol, MetricProtocol):
        return protocol
    if protocol not in METRIC_PROTOCOLS:
        raise KeyError(f"unknown metric protocol {protocol!r}; known: {', '.join(METRIC_PROTOCOLS)}")
    return METRIC_PROTOCOLS[protocol]
