"""Paper-style result tables: our cells beside the published numbers of the same preset, with differences.

Tables are Markdown (readable in a terminal, pasteable into ``docs/results.md``): one row per setting of the preset
(plus ``mean`` for Gaussian8-style presets), one column per (dataset, scale); below our rows, the paper's rows for
the requested methods and our difference to one of them.

Cells of an oracle model (``CellResult.oracle``: MRDA's teacher, given the HR image or the true kernel) get an
``ORACLE evaluation`` header and are compared with the paper's oracle rows (:data:`ORACLE_COMPARE`: MRDA_T2 and
MRDA_T3 of Table V, the teacher of Table VI) instead of blind methods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from blindsr.degradations.presets import EvalPreset, EvalSetting
from blindsr.eval.benchmark import CellResult
from blindsr.eval.paper_results import PaperResult, paper_methods, paper_results

__all__ = ["DEFAULT_COMPARE", "ORACLE_COMPARE", "format_table", "paper_preset_name", "paper_preset_names"]

# the rows printed beside ours by default, per preset (the paper's method first, except Gaussian8's printed bicubic
# row, which comes first as in MRDA Table II)
DEFAULT_COMPARE: dict[str, tuple[str, ...]] = {
    "dmsr-grid": ("DMSR", "DMSR-nf", "IKC-vn"),
    "dmsr-nf": ("DMSR-nf",),
    "gaussian8": ("Bicubic", "MRDA_S", "DASR"),
    "mrda-aniso": ("MRDA_S", "DASR"),
}

# the paper row the Δ line is computed against when the caller does not say (the method the preset reproduces)
DEFAULT_DELTA: dict[str, str] = {"gaussian8": "MRDA_S", "mrda-aniso": "MRDA_S"}

# the rows printed beside an oracle model's cells by default (the paper's oracle teachers)
ORACLE_COMPARE: dict[str, tuple[str, ...]] = {
    "gaussian8": ("MRDA_T2", "MRDA_T3"),
    "dasr-iso": ("MRDA_T w/ fixed Upscaler", "MRDA_T w/o fixed Upscaler"),
}

# published tables measured with the same cells as a preset's own (MRDA Table V: Urban100 x4, Gaussian8 mean)
_SAME_CELLS: dict[str, tuple[str, ...]] = {"gaussian8": ("mrda-ablation",)}


def paper_preset_name(preset: EvalPreset) -> str:
    """The key of the preset's published numbers (``gaussian8.mrda`` shares ``gaussian8``'s)."""
    base = preset.name.split(".")[0]
    return "dmsr-grid" if base == "dmsr-nf" else base


def paper_preset_names(preset: EvalPreset) -> tuple[str, ...]:
    """Every key whose published numbers use the preset's cells: :func:`paper_preset_name` first, then e.g.
    ``mrda-ablation`` (Table V) for Gaussian8."""
    key = paper_preset_name(preset)
    return (key, *_SAME_CELLS.get(key, ()))


def _fmt(psnr: float | None, ssim: float | None) -> str:
    if psnr is None:
        return "–"
    p = "inf" if math.isinf(psnr) else f"{psnr:.2f}"
    return p if ssim is None else f"{p} / {ssim:.4f}"


def _fmt_delta(ours: CellResult | None, theirs: PaperResult | None) -> str:
    if ours is None or theirs is None or theirs.psnr is None:
        return "–"
    dp = ours.psnr - theirs.psnr
    if theirs.ssim is None:
        return f"{dp:+.2f}"
    return f"{dp:+.2f} / {ours.ssim - theirs.ssim:+.4f}"


def format_table(
    cells: Sequence[CellResult],
    preset: EvalPreset,
    *,
    compare: Sequence[str] | None = None,
    delta_against: str | None = None,
    baseline: Sequence[CellResult] | None = None,
) -> str:
    """Render cells as a Markdown table with paper rows.

    Args:
        cells: results of :func:`blindsr.eval.benchmark.evaluate` (one model).
        preset: their preset.
        compare: paper methods to print beside ours (default: :data:`DEFAULT_COMPARE` of the preset, or
            :data:`ORACLE_COMPARE` for an oracle model's cells, filtered to the methods the paper has). Unknown names
            are ignored with a note.
        delta_against: the paper method our difference is computed against (default: the first compared method
            that has a number in every one of our columns, else the first).
        baseline: cells of a baseline model scored on the same cells (bicubic), printed as a row under ours.

    Returns:
        The table, preceded by a header naming the model, preset, metric protocol and LR pipeline (and, first, an
        ``ORACLE evaluation`` line for an oracle model).
    """
    if not cells:
        return "(no results)"
    model = cells[0].model
    oracle = cells[0].oracle
    columns = sorted({(c.dataset, c.scale) for c in cells}, key=lambda k: (_dataset_order(preset, k[0]), k[1]))
    settings = [s.label for s in _settings_in_order(preset, [c.scale for c in cells])]
    if any(c.setting == "mean" for c in cells):
        settings.append("mean")
    by_key = {(c.dataset, c.scale, c.setting): c for c in cells}
    base_key = {(c.dataset, c.scale, c.setting): c for c in baseline or ()}
    pkey = paper_preset_name(preset)
    pkeys = paper_preset_names(preset)
    available = {m for k in pkeys for m in paper_methods(k)}
    defaults = ORACLE_COMPARE if oracle else DEFAULT_COMPARE
    wanted = list(compare) if compare is not None else list(defaults.get(pkey, ()))
    methods = [m for m in wanted if m in available]
    missing = [m for m in wanted if m not in available]

    pl = preset.pipeline
    others = list(dict.fromkeys(c.model for c in cells if c.model != model))
    also = f" (and {', '.join(others)} in the rows that name it)" if others else ""
    lines = []
    if oracle:
        lines.append(f"ORACLE evaluation (not blind SR): the model is given {oracle}")
    lines += [
        f"model: {model}{also} · preset: {preset.name} · metric protocol: {cells[0].metric_protocol} "
        "(PSNR dB / SSIM, Y)",
        f"LR: {preset.kernel_size}x{preset.kernel_size} kernels, {pl.blur_padding} blur padding, "
        f"{pl.bicubic_border} bicubic borders, {'8-bit' if pl.quantize else 'float (no clip, no rounding)'}",
        "",
    ]
    header = ["setting", "row"] + [f"{d} x{s}" for d, s in columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * len(header)) + "|")

    def paper(method: str, d: str, s: int, setting: str) -> PaperResult | None:
        hits = [r for k in pkeys for r in paper_results(k, method=method, dataset=d, scale=s, setting=setting)]
        return hits[0] if hits else None

    for setting in settings:
        ours_row = [by_key.get((d, s, setting)) for d, s in columns]
        if all(c is None for c in ours_row):
            continue
        row_model = next((c.model for c in ours_row if c is not None), model)  # e.g. the DMSR-nf variant's row
        ours_label = f"ours ({row_model}, ORACLE)" if oracle else f"ours ({row_model})"
        lines.append(
            "| " + " | ".join([setting, ours_label] + [_fmt(c.psnr, c.ssim) if c else "–" for c in ours_row]) + " |"
        )
        if base_key:
            base_row = [base_key.get((d, s, setting)) for d, s in columns]
            label = base_row[0].model if base_row[0] else "baseline"
            lines.append("| " + " | ".join(["", label] + [_fmt(c.psnr, c.ssim) if c else "–" for c in base_row]) + " |")
        row_methods = [m for m in methods if any(paper(m, d, s, setting) for d, s in columns)]
        for m in row_methods:
            vals = [paper(m, d, s, setting) for d, s in columns]
            lines.append(
                "| " + " | ".join(["", f"paper {m}"] + [_fmt(v.psnr, v.ssim) if v else "–" for v in vals]) + " |"
            )
        preferred = delta_against if delta_against is not None else (None if oracle else DEFAULT_DELTA.get(pkey))
        if delta_against is None and model == "bicubic":
            preferred = "Bicubic"  # our bicubic against the paper's printed bicubic row
        target = preferred if preferred in row_methods else (row_methods[0] if row_methods else None)
        if target is not None:
            deltas = [_fmt_delta(c, paper(target, d, s, setting)) for c, (d, s) in zip(ours_row, columns, strict=False)]
            lines.append("| " + " | ".join(["", f"Δ vs {target}"] + deltas) + " |")
    sources = sorted({r.source for m in methods for k in pkeys for r in paper_results(k, method=m)})
    if sources:
        lines.append("")
        lines.append("paper numbers: " + "; ".join(sources))
    if missing:
        lines.append(f"(no published numbers for: {', '.join(missing)})")
    for note in preset.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _dataset_order(preset: EvalPreset, name: str) -> int:
    lowered = [d.lower() for d in preset.datasets]
    return lowered.index(name.lower()) if name.lower() in lowered else len(lowered)


def _settings_in_order(preset: EvalPreset, scales: Sequence[int]) -> list[EvalSetting]:
    seen: dict[str, EvalSetting] = {}
    for _, _, st in preset.cells(tuple(sorted(set(scales)))):
        seen.setdefault(st.label, st)
    return list(seen.values())
