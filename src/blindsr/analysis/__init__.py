"""Analysis tools for MRDA (``blindsr analyze``): what the paper's ablation figures show, for your own models.

* :mod:`~blindsr.analysis.idr`: t-SNE of the implicit degradation representation over several degradations
  (Fig. 7, 8), with a separability score;
* :mod:`~blindsr.analysis.rdam`: the RDAM modulation maps over an image (Fig. 10);
* :mod:`~blindsr.analysis.adaptation`: PSNR of the MLN after 0..n inner adaptation steps (Fig. 9a);
* :mod:`~blindsr.analysis.kernels`: DMSR's estimated blur kernel width and noise level against the true ones;
* :mod:`~blindsr.analysis.tsne`, :mod:`~blindsr.analysis.separability`: exact t-SNE, silhouette and k-NN accuracy
  in NumPy; :mod:`~blindsr.analysis.synth`: the degradation sets and their seeded synthesis;
* :mod:`~blindsr.analysis.plots`: the figures (matplotlib, optional: ``pip install 'blindsr[analysis]'``).
"""

from blindsr.analysis.adaptation import AdaptationCurve, LoadedMLN, adaptation_psnr, load_mln, run_adaptation
from blindsr.analysis.idr import IDRAnalysis, IDRSamples, NoIDRError, analyze_idr, collect_idr, idr_network
from blindsr.analysis.kernels import (
    KernelAnalysis,
    KernelRecord,
    KernelSettingSummary,
    NoExtractorError,
    analyze_kernels,
    dmsr_network,
    kernel_width,
    summarize_kernel_records,
)
from blindsr.analysis.rdam import NoRDAMError, RDAMMaps, collect_rdam_maps, rdam_network
from blindsr.analysis.separability import Separability, knn_accuracy, measure_separability, silhouette_score
from blindsr.analysis.synth import degradation_set, parse_degradation, synthesize_lr
from blindsr.analysis.tsne import TSNEResult, run_tsne

__all__ = [
    "AdaptationCurve",
    "IDRAnalysis",
    "IDRSamples",
    "KernelAnalysis",
    "KernelRecord",
    "KernelSettingSummary",
    "LoadedMLN",
    "NoExtractorError",
    "NoIDRError",
    "NoRDAMError",
    "RDAMMaps",
    "Separability",
    "TSNEResult",
    "adaptation_psnr",
    "analyze_idr",
    "analyze_kernels",
    "collect_idr",
    "collect_rdam_maps",
    "degradation_set",
    "dmsr_network",
    "idr_network",
    "kernel_width",
    "knn_accuracy",
    "load_mln",
    "parse_degradation",
    "run_adaptation",
    "measure_separability",
    "silhouette_score",
    "summarize_kernel_records",
    "synthesize_lr",
    "rdam_network",
    "run_tsne",
]
