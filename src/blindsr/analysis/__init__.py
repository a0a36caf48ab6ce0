"""Analysis tools for MRDA (``blindsr analyze``): what the paper's ablation figures show, for your own models.

* :mod:`~blindsr.analysis.idr`: t-SNE of the implicit degradation representation over several degradations
  (Fig. 7, 8), with a separability score;
* :mod:`~blindsr.analysis.rdam`: the RDAM modulation maps over an image (Fig. 10);
* :mod:`~blindsr.analysis.adaptation`: PSNR of the MLN after 0..n inner adaptation steps (Fig. 9a);
* :mod:`~blindsr.analysis.kernels`: DMSR's estimated blur kernel width and noise level against the true ones;
* :mod:`~blindsr.analysis.tsne`, :mod:`~blindsr.analysis.separability`: exact t-SNE, silhouette and k-NN accuracy
  in NumPy; :mod:`~blindsr.analysis.synth`: the degradation sets and their seeded synthesis;
* :mod:`~blindsr.analysis.plots`: the figures (matplotlib, optional: ``pip install -e '.[analysis]' (in the clone)``).

Each ``blindsr analyze`` command is one call here that returns a frozen result object, whose ``.summary()`` is the
text the command prints and whose ``.save(path, *, overwrite=False)`` writes its raw data atomically
(:mod:`~blindsr.analysis.output`); a ``plot_*_report`` function of :mod:`~blindsr.analysis.plots` draws its figure:

* :func:`idr_report` -> :class:`IDRReport` (``.npz``), :func:`rdam_report` -> :class:`RDAMReport` (``.npz``),
* :func:`adaptation_report` -> :class:`AdaptationReport` (``.json``; ``.save_csv``),
* :func:`kernel_report` -> :class:`KernelReport` (``.json``; ``.save_csv``).
"""

from blindsr.analysis.adaptation import (
    AdaptationCurve,
    AdaptationReport,
    LoadedMLN,
    adaptation_psnr,
    adaptation_report,
    load_mln,
    run_adaptation,
)
from blindsr.analysis.idr import (
    IDRAnalysis,
    IDRReport,
    IDRSamples,
    NoIDRError,
    analyze_idr,
    collect_idr,
    idr_network,
    idr_report,
)
from blindsr.analysis.kernels import (
    KernelAnalysis,
    KernelRecord,
    KernelReport,
    KernelSettingSummary,
    NoExtractorError,
    analyze_kernels,
    dmsr_network,
    kernel_report,
    kernel_width,
    summarize_kernel_records,
)
from blindsr.analysis.rdam import (
    NoRDAMError,
    RDAMImage,
    RDAMMaps,
    RDAMReport,
    collect_rdam_maps,
    rdam_network,
    rdam_report,
)
from blindsr.analysis.separability import Separability, knn_accuracy, measure_separability, silhouette_score
from blindsr.analysis.synth import degradation_set, parse_degradation, synthesize_lr
from blindsr.analysis.tsne import TSNEResult, run_tsne

__all__ = [
    "AdaptationCurve",
    "AdaptationReport",
    "IDRAnalysis",
    "IDRReport",
    "IDRSamples",
    "KernelAnalysis",
    "KernelRecord",
    "KernelReport",
    "KernelSettingSummary",
    "LoadedMLN",
    "NoExtractorError",
    "NoIDRError",
    "NoRDAMError",
    "RDAMImage",
    "RDAMMaps",
    "RDAMReport",
    "Separability",
    "TSNEResult",
    "adaptation_psnr",
    "adaptation_report",
    "analyze_idr",
    "analyze_kernels",
    "collect_idr",
    "collect_rdam_maps",
    "degradation_set",
    "dmsr_network",
    "idr_network",
    "idr_report",
    "kernel_report",
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
    "rdam_report",
    "run_tsne",
]
