"""``blindsr metrics``: PSNR/SSIM (and optionally LPIPS) of a folder of SR images against HR images."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

_DESCRIPTION = """PSNR and SSIM of SR images against their HR images, paired by file stem.

HR images are modcropped to --scale; SR images must then have the same size. The default protocol `sr-y` is
the one of SR papers: both images rounded to 8 bits, luma Y of MATLAB rgb2ycbcr (BT.601, not rounded),
`scale` pixels cropped on every side, Wang's SSIM (11x11 Gaussian, sigma 1.5, 'valid'), per-image values
averaged (never a pooled MSE). Other protocols: sr-y-uint8 (Y rounded: older MATLAB tables), sr-y-nocrop, rgb.

SR files may carry a suffix after the stem (e.g. baby_x4.png for baby.png): pass --suffix _x4.
.npy SR files (float32 HxWx3) are accepted and rounded to 8 bits by the protocol.

An image that cannot be read, or whose size does not match, is reported on one line and left out of the mean
(exit status 1). The --json target is checked before any image is scored: it may not be an input, a folder, or an
existing file that is not JSON; an existing JSON file needs --overwrite; only its own folder is created."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics",
        help="PSNR/SSIM (Y channel, paper protocol) of SR images vs HR images",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sr_dir", metavar="SR_DIR", help="folder of super-resolved images")
    p.add_argument("hr_dir", metavar="HR_DIR", help="folder of HR images (or a benchmark set folder with HR/)")
    p.add_argument("--scale", type=int, required=True, help="SR factor: HR modcrop and border crop")
    p.add_argument("--protocol", default="sr-y", help="metric protocol: sr-y (default), sr-y-uint8, sr-y-nocrop, rgb")
    p.add_argument("--suffix", default="", help="suffix of SR stems to strip before pairing (e.g. _x4)")
    p.add_argument(
        "--lpips",
        choices=("alex", "vgg"),
        help="also compute LPIPS (needs converted weights, see `blindsr lpips-convert --help`)",
    )
    p.add_argument(
        "--json",
        metavar="FILE",
        help="write the results as JSON (an infinite PSNR, identical images, is written as null); an existing file is "
        "replaced only with --overwrite, and never when it is an input or not a .json file",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the mean")
    p.set_defaults(func=run)


def _fmt(v: float, digits: int) -> str:
    return "inf" if math.isinf(v) else f"{v:.{digits}f}"


def run(args: argparse.Namespace) -> int:
    import torch

    from blindsr.cli.main import CLIError
    from blindsr.data.benchmark import BenchmarkSet
    from blindsr.data.image_errors import ImageReadError
    from blindsr.data.images import list_images, read_image
    from blindsr.files import atomic_write_json, check_output_file
    from blindsr.metrics import get_metric_protocol, psnr_and_ssim

    protocol = get_metric_protocol(args.protocol)
    sr_dir = Path(args.sr_dir)
    if not sr_dir.is_dir():
        raise CLIError(f"SR folder {sr_dir} does not exist")
    if args.scale < 1:
        raise CLIError(f"--scale must be >= 1, got {args.scale}")
    bench = BenchmarkSet(root=Path(args.hr_dir), name=None, scale=args.scale)
    report = None
    if args.json:
        inputs = [*bench.paths, *list_images(sr_dir, include_npy=True)]
        report = check_output_file(
            args.json, inputs=inputs, overwrite=args.overwrite, suffixes=(".json",), flag="--json"
        )
    sr_files: dict[str, Path] = {}
    for path in list_images(sr_dir, include_npy=True):
        stem = path.stem
        if args.suffix:
            if not stem.endswith(args.suffix):
                continue
            stem = stem[: -len(args.suffix)]
        if stem in sr_files:
            raise CLIError(f"two SR files for {stem!r}: {sr_files[stem].name} and {path.name}")
        sr_files[stem] = path
    hr_names = set(bench.names)
    pairs = [n for n in bench.names if n in sr_files]
    if not pairs:
        raise CLIError(
            f"no SR file in {sr_dir} matches an HR stem in {bench.folder} "
            f"(SR stems: {', '.join(sorted(sr_files)[:5]) or 'none'}; HR stems: "
            f"{', '.join(sorted(hr_names)[:5])}); use --suffix if the SR names carry one"
        )
    missing = sorted(hr_names - set(sr_files))
    extra = sorted(set(sr_files) - hr_names)
    lp = None
    if args.lpips:
        from blindsr.metrics.lpips import LPIPS

        lp = LPIPS(net=args.lpips)
    results: dict[str, dict[str, float]] = {}
    failed: list[str] = []
    for name in pairs:
        try:
            hr = bench[name].hr
            sr = read_image(sr_files[name])
        except (ImageReadError, ValueError, OSError) as e:
            failed.append(name)
            reason = e.reason if isinstance(e, ImageReadError) else (str(e).strip() or type(e).__name__)
            where = e.path if isinstance(e, ImageReadError) else sr_files[name]
            print(f"error: {where}: {reason.splitlines()[0]}; skipped", file=sys.stderr)
            continue
        if sr.shape[-2:] != hr.shape[-2:]:
            failed.append(name)
            print(
                f"{name}: SR is {sr.shape[-1]}x{sr.shape[-2]} but HR (modcropped to x{args.scale}) is "
                f"{hr.shape[-1]}x{hr.shape[-2]}; skipped",
                file=sys.stderr,
            )
            continue
        p, s = psnr_and_ssim(sr, hr, scale=args.scale, protocol=protocol)
        row = {"psnr": float(p), "ssim": float(s)}
        if lp is not None:
            with torch.no_grad():
                row["lpips"] = float(lp(sr.clamp(0, 1).unsqueeze(0), hr.unsqueeze(0)))
        results[name] = row
    if not results:
        raise CLIError("no image pair could be scored")
    keys = ["psnr", "ssim"] + (["lpips"] if lp is not None else [])
    mean = {k: sum(r[k] for r in results.values()) / len(results) for k in keys}
    if not args.quiet:
        width = max(len(n) for n in results) + 2
        head = f"{'image':<{width}}{'PSNR':>9}{'SSIM':>9}" + (f"{'LPIPS':>9}" if lp else "")
        print(head)
        for name, r in results.items():
            line = f"{name:<{width}}{_fmt(r['psnr'], 2):>9}{_fmt(r['ssim'], 4):>9}"
            print(line + (f"{r['lpips']:>9.4f}" if lp else ""))
    line = (
        f"mean over {len(results)} images (protocol {protocol.name}, x{args.scale}): PSNR {_fmt(mean['psnr'], 2)} dB"
        f", SSIM {_fmt(mean['ssim'], 4)}" + (f", LPIPS-{args.lpips} {mean['lpips']:.4f}" if lp else "")
    )
    print(line)
    if missing:
        print(f"warning: {len(missing)} HR image(s) without SR: {', '.join(missing[:10])}", file=sys.stderr)
    if extra:
        print(f"warning: {len(extra)} SR image(s) without HR: {', '.join(extra[:10])}", file=sys.stderr)
    if report is not None:
        out: dict[str, Any] = {
            "mean": mean,
            "images": results,
            "protocol": protocol.name,
            "scale": args.scale,
            "n_images": len(results),
            "unpaired_hr": missing,
            "unpaired_sr": extra,
            "failed": failed,
        }
        atomic_write_json(report, out)
    return 1 if failed else 0
