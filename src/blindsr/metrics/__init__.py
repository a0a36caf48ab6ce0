"""Image-quality metrics: PSNR/SSIM under named protocols, and LPIPS from a local weights file."""

from blindsr.metrics.protocols import METRIC_PROTOCOLS, MetricProtocol, get_metric_protocol
from blindsr.metrics.psnr_ssim import prepare_for_metric, psnr, psnr_and_ssim, ssim

__all__ = [
    "METRIC_PROTOCOLS",
    "MetricProtocol",
    "get_metric_protocol",
    "prepare_for_metric",
    "psnr",
    "psnr_and_ssim",
    "ssim",
]
