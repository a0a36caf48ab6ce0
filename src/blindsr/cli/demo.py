"""``blindsr demo``: upscale the bundled sample images and write a short report."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="upscale the bundled sample images and write a report (what `make demo` runs)",
        description="Upscale the bundled sample images with the zoo's DMSR model of the scale (its noise-free "
        "variant for these clean photos) beside MATLAB-exact bicubic, and run a synthetic round trip (degrade with "
        "the dmsr-grid preset, upscale with both, score) on them. Writes the images and OUT/report.md.",
    )
    p.add_argument(
        "-o", "--output", "--out-dir", dest="out_dir", default="demo_output", help="output folder (default demo_output)"
    )
    p.add_argument("-s", "--scale", type=int, default=4, choices=(2, 3, 4), help="SR factor (default 4)")
    p.add_argument(
        "-m",
        "--model",
        default="auto",
        help="auto (default: dmsr-x<scale> and its noise-free variant; bicubic alone when not installed), bicubic, "
        "or a zoo name / .safetensors file of that scale",
    )
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from blindsr.demo import run_demo

    run_demo(out_dir=Path(args.out_dir), scale=args.scale, device=args.device, model=args.model)
    return 0
