"""The PNG figures of ``blindsr analyze``, drawn with matplotlib's object API on the Agg canvas.

matplotlib is an optional dependency (in the clone: ``pip install -e '.[analysis]'``). It is imported inside the
functions, never through ``pyplot``: no global backend is switched, no window opens, and importing
:mod:`blindsr.analysis` works without it. :func:`require_matplotlib` fails early with a one-line message when it
is missing.

The ``plot_*`` functions draw from plain arrays; the ``plot_*_report`` functions draw the figure of a result object
of :mod:`blindsr.analysis` with the titles ``blindsr analyze`` gives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from blindsr.analysis.adaptation import AdaptationReport
    from blindsr.analysis.idr import IDRReport
    from blindsr.analysis.kernels import KernelReport
    from blindsr.analysis.rdam import RDAMReport

__all__ = [
    "MatplotlibMissingError",
    "RDAMPanel",
    "plot_adaptation",
    "plot_adaptation_report",
    "plot_idr_embedding",
    "plot_idr_report",
    "plot_kernel_estimates",
    "plot_kernel_report",
    "plot_rdam",
    "plot_rdam_blocks",
    "plot_rdam_report",
    "plot_rdam_report_blocks",
    "require_matplotlib",
]

INSTALL_HINT = "pip install -e '.[analysis]' (in the clone)"


class MatplotlibMissingError(ImportError):
    """matplotlib is not installed; the message says how to install it."""


def require_matplotlib() -> None:
    """Raise :class:`MatplotlibMissingError` (one line) when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MatplotlibMissingError(f"the analysis plots need matplotlib: {INSTALL_HINT}") from None


def _figure(width: float, height: float) -> Figure:
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> None:
    from blindsr.files import atomic_write

    atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=fig.dpi))


def _wrap(text: str, width_inches: float, fontsize: float) -> str:
    """`text` broken into lines that fit `width_inches` at `fontsize` (about 0.55 em per character); keeps newlines."""
    import textwrap

    chars = max(20, int(width_inches * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.splitlines())


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_idr_embedding(
    embedding: NDArray[np.float64],
    labels: NDArray[np.int64],
    label_names: Sequence[str],
    *,
    path: str | Path,
    title: str,
    subtitle: str = "",
) -> None:
    """A scatter of the 2-D t-SNE points, one colour per degradation, with a legend (Fig. 7, 8).

    Args:
        embedding: (N, 2) points.
        labels: (N,) index into `label_names`.
        label_names: legend text per label.
        path: the PNG to write.
        title: the figure title.
        subtitle: a smaller second line (e.g. the separability and the seed).
    """
    emb = np.asarray(embedding)
    if emb.ndim != 2 or emb.shape[1] != 2 or emb.shape[0] != len(labels):
        raise ValueError(f"embedding must be (N, 2) with N = len(labels), got {emb.shape} and {len(labels)}")
    fig = _figure(7.5, 6.0)
    ax = fig.add_subplot()
    for i, (name, colour) in enumerate(zip(label_names, _colours(len(label_names)), strict=True)):
        sel = labels == i
        ax.scatter(emb[sel, 0], emb[sel, 1], s=18, color=colour, label=name, alpha=0.85, edgecolors="none")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(_wrap(f"{title}\n{subtitle}" if subtitle else title, 6.5, 9), fontsize=9)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False, markerscale=1.5)
    _save(fig, path)


@dataclass(frozen=True, slots=True)
class RDAMPanel:
    """One column of the RDAM figure.

    Attributes:
        name: the image's name (column title).
        image: (H, W, 3) float RGB in [0, 1] shown on top (the HR image, or the LR input).
        image_title: what the top image is (``"HR"`` / ``"LR input"``).
        modulation: (h, w) the mean modulation map (LR size).
    """

    name: str
    image: NDArray[np.float32]
    image_title: str
    modulation: NDArray[np.float32]


def plot_rdam(panels: Sequence[RDAMPanel], *, path: str | Path, title: str, map_label: str = "M") -> None:
    """Fig. 10's layout: the images on top, their modulation maps below, each map with a colourbar.

    Args:
        panels: one per image (column).
        path: the PNG to write.
        title: the figure title.
        map_label: the colourbar label.
    """
    if not panels:
        raise ValueError("no images to plot")
    n = len(panels)
    width = 3.6 * n + 0.6
    fig = _figure(width, 7.0)
    axes = fig.subplots(2, n, squeeze=False)
    for j, panel in enumerate(panels):
        top, bottom = axes[0][j], axes[1][j]
        top.imshow(np.clip(panel.image, 0.0, 1.0), interpolation="nearest")
        top.set_title(f"{panel.name} ({panel.image_title})", fontsize=9)
        h, w = panel.modulation.shape
        im = bottom.imshow(panel.modulation, cmap="viridis", interpolation="nearest")
        bottom.set_title(f"modulation map ({w}x{h})", fontsize=9)
        fig.colorbar(im, ax=bottom, shrink=0.8, label=map_label)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(_wrap(title, width, 10), fontsize=10)
    _save(fig, path)


def plot_rdam_blocks(
    maps: NDArray[np.float32], *, path: str | Path, title: str, names: Sequence[str] | None = None
) -> None:
    """A grid of per-block modulation maps (one panel per RDA block) with one shared colourbar.

    Args:
        maps: (n_blocks, h, w).
        path: the PNG to write.
        title: the figure title.
        names: panel titles (default ``block 1``, ``block 2``, ...).
    """
    n = maps.shape[0]
    if n == 0:
        raise ValueError("no maps to plot")
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    width = 2.4 * cols + 1.0
    fig = _figure(width, 2.2 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    lo, hi = float(maps.min()), float(maps.max())
    im = None
    for k in range(rows * cols):
        ax = axes[k // cols][k % cols]
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.set_axis_off()
            continue
        im = ax.imshow(maps[k], cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(names[k] if names is not None else f"block {k + 1}", fontsize=8)
    assert im is not None
    fig.colorbar(im, ax=axes, shrink=0.8, label="M")
    fig.suptitle(_wrap(title, width, 9), fontsize=9)
    _save(fig, path)


def plot_adaptation(
    steps: Sequence[int], curves: Sequence[tuple[str, Sequence[float]]], *, path: str | Path, title: str
) -> None:
    """PSNR against the number of inner steps, one line per MLN (Fig. 9a).

    Args:
        steps: the x values (0, 1, ..., n).
        curves: ``(label, psnr per step)`` per MLN.
        path: the PNG to write.
        title: the figure title.
    """
    if not curves:
        raise ValueError("no curves to plot")
    fig = _figure(6.4, 4.4)
    ax = fig.add_subplot()
    for (label, values), colour in zip(curves, _colours(len(curves)), strict=True):
        if len(values) != len(steps):
            raise ValueError(f"curve {label!r} has {len(values)} values for {len(steps)} steps")
        ax.plot(list(steps), list(values), marker="o", markersize=4, color=colour, label=label)
    ax.set_xlabel("MLN inner steps")
    ax.set_ylabel("PSNR (dB, Y)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(_wrap(title, 6.0, 10), fontsize=10)
    _save(fig, path)


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def plot_kernel_estimates(
    true_width: NDArray[np.float64],
    est_width: NDArray[np.float64],
    true_noise: NDArray[np.float64],
    est_noise: NDArray[np.float64],
    *,
    path: str | Path,
    title: str,
    subtitle: str = "",
) -> None:
    """DMSR's extractor against the truth: estimated vs true kernel width, and estimated vs true noise level.

    One point per LR image (faint) and one per (kernel width, noise level) setting, the mean over the images (bold,
    black edge); one colour and marker per true noise level in both panels. The dashed diagonal is a perfect
    estimate.

    Args:
        true_width: (N,) the true kernel's width per LR image (pixels).
        est_width: (N,) the estimated kernel's width.
        true_noise: (N,) the true noise level (0-255).
        est_noise: (N,) the estimated noise level (0-255).
        path: the PNG to write.
        title: the figure title.
        subtitle: a smaller second line (e.g. the correlation).
    """
    tw, ew, tn, en = (
        np.asarray(a, dtype=np.float64).reshape(-1) for a in (true_width, est_width, true_noise, est_noise)
    )
    if not (tw.size == ew.size == tn.size == en.size) or tw.size == 0:
        raise ValueError(
            f"need four arrays of the same non-zero length, got {tw.size}, {ew.size}, {tn.size}, {en.size}"
        )
    levels = np.unique(tn)
    fig = _figure(11.0, 5.0)
    kernel_ax, noise_ax = fig.subplots(1, 2)
    for k, (level, colour) in enumerate(zip(levels, _colours(len(levels)), strict=True)):
        sel = tn == level
        marker = _MARKERS[k % len(_MARKERS)]
        label = f"σn {level:g}"
        widths = np.unique(tw[sel])
        mean_w = np.array([ew[sel & (tw == w)].mean() for w in widths])
        mean_n = np.array([en[sel & (tw == w)].mean() for w in widths])
        kernel_ax.scatter(tw[sel], ew[sel], s=14, marker=marker, color=colour, alpha=0.25, edgecolors="none")
        kernel_ax.plot(widths, mean_w, color=colour, linewidth=1.2, alpha=0.8)
        kernel_ax.scatter(
            widths, mean_w, s=60, marker=marker, color=colour, edgecolors="black", linewidths=0.8, label=label, zorder=3
        )
        noise_ax.scatter(tn[sel], en[sel], s=14, marker=marker, color=colour, alpha=0.25, edgecolors="none")
        noise_ax.scatter(
            np.full(widths.shape, level),
            mean_n,
            s=60,
            marker=marker,
            color=colour,
            edgecolors="black",
            linewidths=0.8,
            label=label,
            zorder=3,
        )
    for ax, x, y in ((kernel_ax, tw, ew), (noise_ax, tn, en)):
        finite = np.concatenate([x[np.isfinite(x)], y[np.isfinite(y)]])
        top = float(finite.max()) if finite.size else 1.0
        top = top * 1.08 if top > 0 else 1.0
        ax.plot([0.0, top], [0.0, top], linestyle="--", color="0.4", linewidth=1.0, label="estimate = truth")
        ax.set_xlim(-0.03 * top, top)
        ax.set_ylim(-0.03 * top, top)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    kernel_ax.set_xlabel("true kernel width (px)")
    kernel_ax.set_ylabel("estimated kernel width (px)")
    kernel_ax.set_title("blur kernel (faint: per image; bold: mean)", fontsize=9)
    noise_ax.set_xlabel("true noise level σn (0-255)")
    noise_ax.set_ylabel("estimated noise level: std(N_est) x 255")
    noise_ax.set_title("noise level (faint: per image; bold: mean per kernel width)", fontsize=9)
    fig.suptitle(_wrap(f"{title}\n{subtitle}" if subtitle else title, 10.5, 10), fontsize=10)
    _save(fig, path)


# --------------------------------------------------------------------------------------------------------------
# the figures of the result objects, with the titles ``blindsr analyze`` gives them


def plot_idr_report(report: IDRReport, *, path: str | Path) -> None:
    """:func:`plot_idr_embedding` of an :class:`~blindsr.analysis.idr.IDRReport`, titled with the model, the set,
    the t-SNE settings and the separability."""
    analysis = report.analysis
    samples = analysis.samples
    subtitle = (
        f"{report.n_samples} LR images of {report.dataset}; t-SNE perplexity {analysis.tsne.perplexity:.3g}, "
        f"seed {report.seed}\nseparability in IDR space: {analysis.separability.summary()}"
    )
    plot_idr_embedding(
        analysis.tsne.embedding,
        samples.labels,
        samples.label_names,
        path=path,
        title=f"IDR of {report.model} (x{report.scale}), {report.kind} degradations",
        subtitle=subtitle,
    )


def plot_rdam_report(report: RDAMReport, *, path: str | Path) -> None:
    """:func:`plot_rdam` of an :class:`~blindsr.analysis.rdam.RDAMReport`: every image above its mean map."""
    panels = [
        RDAMPanel(name=image.name, image=image.shown, image_title=image.shown_title, modulation=image.mean)
        for image in report.images
    ]
    plot_rdam(
        panels,
        path=path,
        title=(
            f"RDAM modulation maps of {report.model} (x{report.scale}, {report.what}; mean over "
            f"{len(report.conv_names)} RDA convs)"
        ),
        map_label="M (mean over RDA convs)",
    )


def plot_rdam_report_blocks(report: RDAMReport, index: int, *, path: str | Path) -> None:
    """:func:`plot_rdam_blocks` of image `index` of an :class:`~blindsr.analysis.rdam.RDAMReport`."""
    image = report.images[index]
    plot_rdam_blocks(
        image.per_block, path=path, title=f"RDAM maps per RDA block: {image.name} ({report.model}, {report.what})"
    )


def plot_adaptation_report(report: AdaptationReport, *, path: str | Path) -> None:
    """:func:`plot_adaptation` of an :class:`~blindsr.analysis.adaptation.AdaptationReport`: one curve per MLN."""
    plot_adaptation(
        list(range(report.steps + 1)),
        [(c.label, c.mean) for c in report.curves],
        path=path,
        title=(
            f"MLN adaptation: {report.dataset} x{report.scale}, {report.preset} ({report.n_pairs} pairs), "
            f"inner lr {report.rate_text or '-'}"
        ),
    )


def plot_kernel_report(report: KernelReport, *, path: str | Path) -> None:
    """:func:`plot_kernel_estimates` of a :class:`~blindsr.analysis.kernels.KernelReport`."""
    analysis = report.analysis
    plot_kernel_estimates(
        analysis.column("true_width"),
        analysis.column("est_width"),
        analysis.column("sigma_n"),
        analysis.column("est_noise"),
        path=path,
        title=(
            f"Degradation extractor of {report.model} (x{report.scale}) on {report.dataset}, {report.n_images} images"
        ),
        subtitle=report.score,
    )
