"""``blindsr protocols``: the evaluation presets, metric protocols and training presets, with their grids."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "protocols",
        help="list evaluation presets (degradation grids), metric protocols and training presets",
        description="List the named evaluation presets with their degradation grids, LR pipeline, seeding and "
        "metric protocol; the metric protocols; and the training degradation presets. Give a NAME for one preset "
        "in full (NAME-xS restricts it to one scale, e.g. gaussian8-x4).",
    )
    p.add_argument("name", nargs="?", help="one evaluation preset to show in full")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def _preset_dict(preset: Any) -> dict[str, Any]:
    from blindsr.eval.paper_results import paper_methods
    from blindsr.eval.report import paper_preset_name

    return {
        "name": preset.name,
        "description": preset.description,
        "source": preset.source,
        "datasets": list(preset.datasets),
        "kernel_size": preset.kernel_size,
        "blur_padding": preset.pipeline.blur_padding,
        "bicubic_border": preset.pipeline.bicubic_border,
        "lr_format": preset.lr_format,
        "metric_protocol": preset.metric_protocol,
        "average": preset.average,
        "visual_only": preset.visual_only,
        "grid": {f"x{s}": [st.as_dict() for st in settings] for s, settings in preset.grid},
        "paper_tables": list(preset.paper_tables),
        "paper_methods": list(paper_methods(paper_preset_name(preset))),
        "notes": list(preset.notes),
    }


def _grid_line(settings: tuple[Any, ...]) -> str:
    if all(s.kernel == "iso" for s in settings):
        sig = sorted({s.sigma for s in settings})
        noise = sorted({s.noise for s in settings})
        text = f"sigma_k {{{', '.join(f'{v:g}' for v in sig)}}} x sigma_n {{{', '.join(f'{v:g}' for v in noise)}}}"
        if len(settings) != len(sig) * len(noise):
            text = ", ".join(s.label for s in settings)
        return text
    kernels = sorted({(s.kernel_index, s.lambda1, s.lambda2, s.theta_deg) for s in settings})
    noise = sorted({s.noise for s in settings})
    ks = "; ".join(f"#{i} ({a:g}, {b:g}, {t:g} deg)" for i, a, b, t in kernels)
    noises = ", ".join(f"{v:g}" for v in noise)
    return f"{len(kernels)} aniso kernels (lambda1, lambda2, theta): {ks} x sigma_n {{{noises}}}"


def run(args: argparse.Namespace) -> int:
    from blindsr.degradations.presets import EVAL_PRESETS, TRAINING_PRESETS, get_eval_preset
    from blindsr.metrics.protocols import METRIC_PROTOCOLS

    presets = [get_eval_preset(args.name)] if args.name else list(EVAL_PRESETS.values())
    if args.json:
        out: dict[str, Any] = {"eval_presets": [_preset_dict(p) for p in presets]}
        if not args.name:
            out["metric_protocols"] = {
                n: {
                    "color": m.color,
                    "crop_border": m.crop_border,
                    "quantize_uint8": m.quantize_uint8,
                    "round_y": m.round_y,
                }
                for n, m in METRIC_PROTOCOLS.items()
            }
            out["training_presets"] = {n: _spec_dict(s) for n, s in TRAINING_PRESETS.items()}
        print(json.dumps(out, indent=2))
        return 0
    print("Evaluation presets (blindsr eval --protocol NAME; NAME-xS for one scale):\n")
    for p in presets:
        lr = "float LR (no clip/round)" if p.lr_format == "float" else "8-bit LR"
        avg = "mean over all (image, setting) pairs" if p.average == "over_settings" else "one cell per setting"
        print(f"{p.name}{'  [visual only]' if p.visual_only else ''}")
        print(f"  {p.description}")
        print(f"  source: {p.source}")
        print(
            f"  datasets: {', '.join(p.datasets)} · kernel {p.kernel_size}x{p.kernel_size} · blur padding "
            f"{p.pipeline.blur_padding} · bicubic border {p.pipeline.bicubic_border} · {lr} · metric "
            f"{p.metric_protocol} · {avg}"
        )
        for s, settings in p.grid:
            print(f"  x{s}: {len(settings)} settings: {_grid_line(settings)}")
        if args.name:
            for s, settings in p.grid:
                print(f"  x{s} labels: {', '.join(st.label for st in settings)}")
        if p.paper_tables:
            print(f"  published numbers: {', '.join(p.paper_tables)}")
        for note in p.notes if args.name else ():
            print(f"  note: {note}")
        print()
    if args.name:
        return 0
    print("Metric protocols (blindsr metrics --protocol NAME):")
    for n, m in METRIC_PROTOCOLS.items():
        crop = "crop = scale" if m.crop_border == "scale" else f"crop = {m.crop_border}"
        color = "MATLAB BT.601 Y" + (" rounded" if m.round_y else "") if m.color != "rgb" else "RGB"
        print(f"  {n:<12} {color}, {crop}, {'8-bit' if m.quantize_uint8 else 'float'} images, per-image mean")
    print("\nTraining degradation presets:")
    for n, spec in TRAINING_PRESETS.items():
        print(f"  {n:<17} {_spec_line(spec)}")
    return 0


def _spec_dict(s: Any) -> dict[str, Any]:
    d = {
        "kernel_size": s.kernel_size,
        "kernel": s.kernel,
        "noise": list(s.noise),
        "per": s.per,
        "blur_padding": s.pipeline.blur_padding,
        "bicubic_border": s.pipeline.bicubic_border,
        "clip": s.pipeline.clip,
        "quantize": s.pipeline.quantize,
    }
    if s.kernel == "iso":
        d["sigma"] = list(s.sigma)
    elif s.kernel == "aniso":
        d.update(lambda1=list(s.lambda1), lambda2=list(s.lambda2), theta_deg=[math.degrees(t) for t in s.theta])
    return d


def _spec_line(s: Any) -> str:
    if s.kernel == "iso":
        k = f"iso {s.kernel_size}x{s.kernel_size} sigma U[{s.sigma[0]:g}, {s.sigma[1]:g}]"
    elif s.kernel == "aniso":
        k = (
            f"aniso {s.kernel_size}x{s.kernel_size} lambda U[{s.lambda1[0]:g}, {s.lambda1[1]:g}], theta "
            f"U[{math.degrees(s.theta[0]):g}, {math.degrees(s.theta[1]):g}) deg"
        )
    else:
        k = "no blur"
    n = f"noise U[{s.noise[0]:g}, {s.noise[1]:g}]" if s.noise[1] > 0 else "no noise"
    lr = "8-bit LR" if s.pipeline.quantize else "float LR"
    return f"{k}, {n}, one per {s.per}, {s.pipeline.blur_padding} padding, {lr}"
