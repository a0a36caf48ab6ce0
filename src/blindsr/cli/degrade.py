"""``blindsr degrade``: synthesise LR images from a folder of HR images (one setting, or every cell of a preset)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

_DESCRIPTION = """Synthesise low-resolution images: y = (x * k) downscaled_s + n.

Each HR image is modcropped to the scale, blurred with a Gaussian kernel (correlation, chosen padding), downscaled
with MATLAB-exact bicubic, and given additive white Gaussian noise (sigma on the 0-255 scale). One LR file per HR
image is written with the same stem, plus degradation.json recording every parameter.

Noise is seeded per image: seed = first 8 bytes of sha256("blindsr-degrade|SEED|STEM"), so an image's LR does not
depend on which other images are in the folder.

Formats: npy = float32 HxWx3 RGB in [0, 1], unclipped and unrounded (the DMSR protocol keeps LR in float);
png = clipped and rounded to 8 bits.

With --preset NAME every cell of an evaluation preset is written to OUT_DIR/x<S>/<label>/<stem>.<ext> with an
index.json, using the preset's own kernels, padding, borders, LR format and noise seeding (seeded by preset,
dataset, image, scale and setting, exactly as `blindsr eval` does)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "degrade",
        help="synthesise LR images from HR images (blur, MATLAB bicubic, noise)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("hr_dir", metavar="HR_DIR", help="folder of HR images (or a benchmark set folder with HR/)")
    p.add_argument("-o", "--output", "--out", dest="out_dir", required=True, metavar="OUT_DIR", help="output folder")
    p.add_argument("--scale", type=int, help="downscaling factor (2, 3, 4, ...); with --preset: default all")
    kernel = p.add_mutually_exclusive_group()
    kernel.add_argument(
        "--kernel-sigma",
        "--kernel_sigma",
        type=float,
        metavar="F",
        help="isotropic Gaussian width in pixels (0 = no blur)",
    )
    kernel.add_argument(
        "--aniso",
        nargs=3,
        type=float,
        metavar=("L1", "L2", "THETA_DEG"),
        help="anisotropic Gaussian: standard deviations along its two axes and rotation in degrees "
        "(DASR/MRDA convention)",
    )
    kernel.add_argument(
        "--preset", metavar="NAME", help="write every cell of an evaluation preset (see `blindsr protocols`)"
    )
    p.add_argument(
        "--kernel-size",
        "--kernel_size",
        type=int,
        metavar="K",
        help="odd kernel size (default: 15 for --kernel-sigma, 21 for --aniso)",
    )
    p.add_argument("--noise", type=float, default=0.0, metavar="SIGMA_255", help="noise level, 0-255 scale (default 0)")
    p.add_argument(
        "--padding",
        choices=("replicate", "reflect"),
        default="replicate",
        help="blur border mode: replicate (DMSR/SRMD protocol, default) or reflect (MRDA/DASR)",
    )
    p.add_argument(
        "--bicubic-border",
        "--bicubic_border",
        choices=("symmetric", "replicate"),
        default="symmetric",
        help="bicubic border: symmetric (MATLAB, default) or replicate (MRDA/DASR reference code)",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument(
        "--format",
        choices=("png", "npy"),
        help="png (8-bit, default) or npy (float32, unclipped); with --preset: the preset's LR format",
    )
    p.add_argument("--dataset-name", help="dataset name used in preset noise seeds (default: the HR folder's set name)")
    p.add_argument("--device", default="cpu", help="torch device for the computation (default cpu)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _write(path: Path, lr: Any, fmt: str) -> None:
    from blindsr.data.io import write_image

    write_image(path, lr.detach().float().cpu())


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm.auto import tqdm

    import blindsr
    from blindsr.cli.main import CLIError
    from blindsr.data.benchmark import BenchmarkSet

    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise CLIError(f"output {out} exists and is not a folder")
    hr_dir = Path(args.hr_dir)
    if not hr_dir.is_dir():
        raise CLIError(f"HR folder {hr_dir} does not exist")

    if args.preset:
        return _run_preset(args, out, hr_dir)

    if args.scale is None:
        raise CLIError("--scale is required (or use --preset)")
    if args.kernel_sigma is None and args.aniso is None:
        raise CLIError("give a kernel: --kernel-sigma F, --aniso L1 L2 THETA_DEG, or --preset NAME")
    if args.noise < 0 or not math.isfinite(args.noise):
        raise CLIError(f"--noise must be >= 0, got {args.noise}")
    from blindsr.degradations import DegradationParams, Pipeline, degrade
    from blindsr.degradations.kernels import anisotropic_gaussian_kernels, isotropic_gaussian_kernels
    from blindsr.degradations.noise import derive_seed, standard_normal

    size = args.kernel_size or (15 if args.kernel_sigma is not None else 21)
    if args.kernel_sigma is not None:
        if args.kernel_sigma < 0:
            raise CLIError(f"--kernel-sigma must be >= 0, got {args.kernel_sigma}")
        kernel = isotropic_gaussian_kernels(torch.tensor([args.kernel_sigma], dtype=torch.float64), size)
        kernel_desc: dict[str, Any] = {"type": "iso", "sigma": args.kernel_sigma}
    else:
        l1, l2, theta = args.aniso
        if l1 <= 0 or l2 <= 0:
            raise CLIError("--aniso standard deviations must be > 0")
        kernel = anisotropic_gaussian_kernels(
            torch.tensor([l1], dtype=torch.float64),
            torch.tensor([l2], dtype=torch.float64),
            torch.tensor([math.radians(theta)], dtype=torch.float64),
            size,
        )
        kernel_desc = {"type": "aniso", "lambda1": l1, "lambda2": l2, "theta_deg": theta}
    fmt = args.format or "png"
    pipeline = Pipeline(blur_padding=args.padding, bicubic_border=args.bicubic_border)
    device = torch.device(args.device)
    deg = DegradationParams(
        kernels=kernel, noise_sigma=torch.tensor([args.noise], dtype=torch.float64), pipeline=pipeline
    ).to(device, dtype=torch.float32)
    bench = BenchmarkSet(root=hr_dir, name=None, scale=args.scale)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    written = []
    for item in tqdm(bench, desc="degrade", unit="img", disable=args.quiet, file=sys.stderr):
        hr = item.hr.to(device).unsqueeze(0)
        noise = None
        if args.noise > 0:
            g = torch.Generator().manual_seed(derive_seed("blindsr-degrade", args.seed, item.name))
            noise = standard_normal((1, 3, hr.shape[-2] // args.scale, hr.shape[-1] // args.scale), generator=g)
        lr = degrade(hr, deg, scale=args.scale, noise=noise).lr[0]
        path = out / f"{item.name}.{fmt}"
        _write(path, lr, fmt)
        written.append(
            {"stem": item.name, "file": path.name, "hr_size": list(item.hr.shape[-2:]), "lr_size": list(lr.shape[-2:])}
        )
    meta = {
        "blindsr_version": blindsr.__version__,
        "hr_dir": str(hr_dir),
        "scale": args.scale,
        "kernel": {**kernel_desc, "size": size},
        "noise_sigma_255": args.noise,
        "blur_padding": args.padding,
        "bicubic_border": args.bicubic_border,
        "format": fmt,
        "lr_values": "float32, unclipped, unrounded" if fmt == "npy" else "clipped to [0, 1], rounded to 8 bits",
        "seed": args.seed,
        "noise_seed_rule": 'sha256("blindsr-degrade|<seed>|<stem>")[:8], big-endian, masked to 63 bits',
        "images": written,
    }
    _write_json(out / "degradation.json", meta)
    print(f"wrote {len(written)} LR images to {out} ({fmt}, x{args.scale}, {time.perf_counter() - t0:.1f} s)")
    return 0


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def _run_preset(args: argparse.Namespace, out: Path, hr_dir: Path) -> int:
    import torch
    from tqdm.auto import tqdm

    import blindsr
    from blindsr.cli.main import CLIError
    from blindsr.data.benchmark import BenchmarkSet
    from blindsr.degradations.presets import get_eval_preset

    if args.kernel_size or args.noise or args.padding != "replicate" or args.bicubic_border != "symmetric":
        raise CLIError(
            "--preset fixes kernels, noise, padding and borders; drop --kernel-size/--noise/--padding/--bicubic-border"
        )
    preset = get_eval_preset(args.preset)
    scales = (args.scale,) if args.scale else preset.scales
    for s in scales:
        preset.settings_for(s)
    fmt = args.format or ("npy" if preset.lr_format == "float" else "png")
    device = torch.device(args.device)
    index: dict[str, Any] = {
        "blindsr_version": blindsr.__version__,
        "preset": preset.name,
        "description": preset.description,
        "hr_dir": str(hr_dir),
        "format": fmt,
        "kernel_size": preset.kernel_size,
        "blur_padding": preset.pipeline.blur_padding,
        "bicubic_border": preset.pipeline.bicubic_border,
        "lr_values": "float32, unclipped, unrounded" if not preset.pipeline.quantize else "8-bit (clipped, rounded)",
        "noise_seed_rule": 'sha256("<preset>|<dataset>|<stem>|x<scale>|<setting index>")[:8], big-endian, 63 bits',
        "cells": [],
    }
    total = 0
    for s in scales:
        bench = BenchmarkSet(root=hr_dir, name=None, scale=s)
        dataset = args.dataset_name or bench.dataset_name
        index["dataset"] = dataset
        settings = preset.settings_for(s)
        bar = tqdm(
            total=len(bench) * len(settings),
            desc=f"{preset.name} x{s}",
            unit="img",
            disable=args.quiet,
            file=sys.stderr,
        )
        folders = {i: out / f"x{s}" / st.label for i, st in enumerate(settings)}
        images: dict[int, list[str]] = {i: [] for i in folders}
        for item in bench:
            hr = item.hr.to(device).unsqueeze(0)
            for i in range(len(settings)):
                lr = preset.degrade(hr, scale=s, setting_index=i, dataset=dataset, stem=item.name).lr[0]
                _write(folders[i] / f"{item.name}.{fmt}", lr, fmt)
                images[i].append(item.name)
                bar.update(1)
                total += 1
        bar.close()
        for i, st in enumerate(settings):
            index["cells"].append(
                {
                    "scale": s,
                    "setting_index": i,
                    **st.as_dict(),
                    "folder": str(folders[i].relative_to(out)),
                    "images": images[i],
                }
            )
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "index.json", index)
    print(f"wrote {total} LR images ({len(index['cells'])} cells of {preset.name}) to {out}")
    return 0
