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
dataset, image, scale and setting, exactly as `blindsr eval` does).

Nothing is lost: OUT_DIR may not be, contain or be inside the folder the HR images are read from; existing LR files
are kept (and skipped) unless --overwrite, and a folder whose degradation.json / index.json records other settings
is refused; an image that cannot be read is reported as `error: PATH: reason` and the others are still written
(exit status 1, `N of M failed`). Numbers are checked first: --scale 1..16, --kernel-size odd 1..255, finite
sigmas, --noise 0..255."""


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
    p.add_argument("--overwrite", action="store_true", help="replace existing LR files (default: keep and skip them)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _write(path: Path, lr: Any) -> None:
    from blindsr.data.images import write_image

    write_image(path, lr.detach().float().cpu())


_MAX_SCALE = 16
_MAX_KERNEL_SIZE = 255


def _finite(value: float, flag: str, *, minimum: float | None = None, above: float | None = None) -> float:
    """`value` when it is a finite number (>= `minimum`, > `above`); else a one-line error naming `flag`."""
    from blindsr.cli.main import CLIError

    if not math.isfinite(value):
        raise CLIError(f"{flag} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise CLIError(f"{flag} must be >= {minimum:g}, got {value:g}")
    if above is not None and value <= above:
        raise CLIError(f"{flag} must be > {above:g}, got {value:g}")
    return value


def _check_numbers(args: argparse.Namespace) -> None:
    """Validate every number at the edge, before any image is read (NaN, infinities, sizes that cannot run)."""
    from blindsr.cli.main import CLIError

    if args.scale is not None and not 1 <= args.scale <= _MAX_SCALE:
        raise CLIError(f"--scale must be an integer in 1..{_MAX_SCALE}, got {args.scale}")
    if args.kernel_size is not None and not (1 <= args.kernel_size <= _MAX_KERNEL_SIZE and args.kernel_size % 2):
        raise CLIError(f"--kernel-size must be an odd integer in 1..{_MAX_KERNEL_SIZE}, got {args.kernel_size}")
    if args.kernel_sigma is not None:
        _finite(args.kernel_sigma, "--kernel-sigma", minimum=0)
    if args.aniso is not None:
        l1, l2, theta = args.aniso
        _finite(l1, "--aniso L1", above=0)
        _finite(l2, "--aniso L2", above=0)
        _finite(theta, "--aniso THETA_DEG")
    _finite(args.noise, "--noise", minimum=0)
    if args.noise > 255:
        raise CLIError(f"--noise is on the 0-255 scale; must be <= 255, got {args.noise:g}")


def _guard_output(out: Path, image_folder: Path) -> None:
    """Refuse an output folder that is, contains or is inside the folder the HR images are read from."""
    from blindsr.files import check_output_folder

    check_output_folder(out, inputs=[image_folder])


def _same_settings(old: dict[str, Any], new: dict[str, Any], *, ignore: tuple[str, ...]) -> list[str]:
    """Keys whose values differ between an existing index and this run (paths compared resolved)."""
    differ = []
    for key in sorted(set(old) | set(new)):
        if key in ignore:
            continue
        a, b = old.get(key), new.get(key)
        if key == "hr_dir" and isinstance(a, str) and isinstance(b, str):
            a, b = str(Path(a).resolve()), str(Path(b).resolve())
        if a != b:
            differ.append(key)
    return differ


def _existing_index(
    path: Path, settings: dict[str, Any], *, overwrite: bool, ignore: tuple[str, ...], targets: list[Path]
) -> Any:
    """The index already in OUT when it was made with the same settings (so existing files can be kept); None when
    there is none or with --overwrite. An error when OUT holds images made with other settings, or LR files
    (`targets` that exist) without an index: an interrupted run of unknown settings, or another tool's files.

    Each run writes its index (settings first, images at the end) before it writes any image, so files beside an
    index of the same settings were made with those settings.
    """
    from blindsr.cli.main import CLIError

    if overwrite:
        return None
    if not path.exists():
        found = next((t for t in targets if t.exists()), None)
        if found is not None:
            raise CLIError(
                f"{path.parent} already holds {found.name} but no {path.name} says how it was made; use another "
                "folder or --overwrite"
            )
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise CLIError(f"{path} exists but is not a readable index; use another folder or --overwrite") from None
    if not isinstance(old, dict):
        raise CLIError(f"{path} exists but is not a readable index; use another folder or --overwrite")
    differ = _same_settings(old, settings, ignore=ignore)
    if differ:
        raise CLIError(
            f"{path.parent} already holds LR images made with other settings ({', '.join(differ)} differ in "
            f"{path.name}); use another folder or --overwrite"
        )
    return old


class _Progress:
    """Counts of one run: written, kept (existing, skipped) and failed files; failures printed as one line each."""

    def __init__(self) -> None:
        self.written = self.kept = self.failed = 0

    def fail(self, path: Path, reason: str) -> None:
        from tqdm.auto import tqdm

        self.failed += 1
        tqdm.write(f"error: {path}: {reason}", file=sys.stderr)

    def summary(self, what: str, out: Path) -> str:
        text = f"wrote {self.written} {what} to {out}"
        if self.kept:
            text += f"; kept {self.kept} existing (use --overwrite to replace them)"
        return text


def _load(bench: Any, index: int, progress: _Progress) -> Any:
    """Image `index` of `bench`, or None (the failure reported) when it cannot be read."""
    from blindsr.data.image_errors import ImageReadError

    try:
        return bench[index]
    except ImageReadError as e:
        progress.fail(bench.paths[index], e.reason)
    except (ValueError, OSError) as e:
        progress.fail(bench.paths[index], str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
    return None


def _exit_code(progress: _Progress, total: int) -> int:
    if progress.failed:
        print(f"{progress.failed} of {total} failed", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    from blindsr.cli.main import CLIError
    from blindsr.data.benchmark import BenchmarkSet

    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise CLIError(f"output {out} exists and is not a folder")
    hr_dir = Path(args.hr_dir)
    if not hr_dir.is_dir():
        raise CLIError(f"HR folder {hr_dir} does not exist")
    _check_numbers(args)

    if args.preset:
        return _run_preset(args, out, hr_dir)

    if args.scale is None:
        raise CLIError("--scale is required (or use --preset)")
    if args.kernel_sigma is None and args.aniso is None:
        raise CLIError("give a kernel: --kernel-sigma F, --aniso L1 L2 THETA_DEG, or --preset NAME")
    bench = BenchmarkSet(root=hr_dir, name=None, scale=args.scale)
    _guard_output(out, bench.folder)
    return _run_single(args, out, hr_dir, bench)


def _run_single(args: argparse.Namespace, out: Path, hr_dir: Path, bench: Any) -> int:
    import torch
    from tqdm.auto import tqdm

    import blindsr
    from blindsr.degradations import DegradationParams, Pipeline, degrade
    from blindsr.degradations.kernels import anisotropic_gaussian_kernels, isotropic_gaussian_kernels
    from blindsr.degradations.noise import derive_seed, standard_normal
    from blindsr.files import make_parent

    size = args.kernel_size or (15 if args.kernel_sigma is not None else 21)
    if args.kernel_sigma is not None:
        kernel = isotropic_gaussian_kernels(torch.tensor([args.kernel_sigma], dtype=torch.float64), size)
        kernel_desc: dict[str, Any] = {"type": "iso", "sigma": args.kernel_sigma}
    else:
        l1, l2, theta = args.aniso
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
    meta: dict[str, Any] = {
        "blindsr_version": blindsr.__version__,
        "hr_dir": str(hr_dir.resolve()),
        "scale": args.scale,
        "kernel": {**kernel_desc, "size": size},
        "noise_sigma_255": args.noise,
        "blur_padding": args.padding,
        "bicubic_border": args.bicubic_border,
        "format": fmt,
        "lr_values": "float32, unclipped, unrounded" if fmt == "npy" else "clipped to [0, 1], rounded to 8 bits",
        "seed": args.seed,
        "noise_seed_rule": 'sha256("blindsr-degrade|<seed>|<stem>")[:8], big-endian, masked to 63 bits',
    }
    index_path = out / "degradation.json"
    targets = [out / f"{name}.{fmt}" for name in bench.names]
    old = _existing_index(
        index_path, meta, overwrite=args.overwrite, ignore=("blindsr_version", "images", "complete"), targets=targets
    )
    previous = {entry.get("stem"): entry for entry in (old or {}).get("images", []) if isinstance(entry, dict)}
    make_parent(index_path)  # OUT itself, when its parent exists (nothing above it is created)
    # the settings go first, before any image: files beside this index are known to be made with them
    _write_json(index_path, {**meta, "complete": False, "images": (old or {}).get("images", [])})
    t0 = time.perf_counter()
    progress = _Progress()
    images: list[dict[str, Any]] = []
    for i in tqdm(range(len(bench)), desc="degrade", unit="img", disable=args.quiet, file=sys.stderr):
        name = bench.names[i]
        path = out / f"{name}.{fmt}"
        if path.exists() and not args.overwrite:
            progress.kept += 1  # made with these settings (see _existing_index); sizes unknown if not listed
            images.append(previous.get(name, {"stem": name, "file": path.name}))
            continue
        item = _load(bench, i, progress)
        if item is None:
            continue
        hr = item.hr.to(device).unsqueeze(0)
        noise = None
        if args.noise > 0:
            g = torch.Generator().manual_seed(derive_seed("blindsr-degrade", args.seed, item.name))
            noise = standard_normal((1, 3, hr.shape[-2] // args.scale, hr.shape[-1] // args.scale), generator=g)
        lr = degrade(hr, deg, scale=args.scale, noise=noise).lr[0]
        _write(path, lr)
        progress.written += 1
        images.append(
            {"stem": item.name, "file": path.name, "hr_size": list(item.hr.shape[-2:]), "lr_size": list(lr.shape[-2:])}
        )
    meta["images"] = sorted(images, key=lambda entry: str(entry["stem"]))
    meta["complete"] = progress.failed == 0
    _write_json(index_path, meta)
    elapsed = time.perf_counter() - t0
    print(f"{progress.summary('LR images', out)} ({fmt}, x{args.scale}, {elapsed:.1f} s)")
    return _exit_code(progress, len(bench))


def _write_json(path: Path, obj: Any) -> None:
    from blindsr.files import atomic_write_text

    atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def _run_preset(args: argparse.Namespace, out: Path, hr_dir: Path) -> int:
    import torch
    from tqdm.auto import tqdm

    import blindsr
    from blindsr.cli.main import CLIError
    from blindsr.data.benchmark import BenchmarkSet
    from blindsr.degradations.presets import get_eval_preset
    from blindsr.files import make_parent

    if args.kernel_size or args.noise or args.padding != "replicate" or args.bicubic_border != "symmetric":
        raise CLIError(
            "--preset fixes kernels, noise, padding and borders; drop --kernel-size/--noise/--padding/--bicubic-border"
        )
    preset = get_eval_preset(args.preset)
    scales = (args.scale,) if args.scale else preset.scales
    for s in scales:
        preset.settings_for(s)
    benches = {s: BenchmarkSet(root=hr_dir, name=None, scale=s) for s in scales}
    _guard_output(out, benches[scales[0]].folder)
    fmt = args.format or ("npy" if preset.lr_format == "float" else "png")
    device = torch.device(args.device)
    dataset = args.dataset_name or benches[scales[0]].dataset_name
    index: dict[str, Any] = {
        "blindsr_version": blindsr.__version__,
        "preset": preset.name,
        "description": preset.description,
        "hr_dir": str(hr_dir.resolve()),
        "format": fmt,
        "kernel_size": preset.kernel_size,
        "blur_padding": preset.pipeline.blur_padding,
        "bicubic_border": preset.pipeline.bicubic_border,
        "lr_values": "float32, unclipped, unrounded" if not preset.pipeline.quantize else "8-bit (clipped, rounded)",
        "noise_seed_rule": 'sha256("<preset>|<dataset>|<stem>|x<scale>|<setting index>")[:8], big-endian, 63 bits',
        "dataset": dataset,
    }
    index_path = out / "index.json"
    targets = [
        out / f"x{s}" / st.label / f"{name}.{fmt}"
        for s in scales
        for st in preset.settings_for(s)
        for name in benches[s].names
    ]
    old = _existing_index(
        index_path, index, overwrite=args.overwrite, ignore=("blindsr_version", "cells", "complete"), targets=targets
    )
    old_cells = [c for c in (old or {}).get("cells", []) if isinstance(c, dict)]
    make_parent(index_path)  # OUT itself, when its parent exists (nothing above it is created)
    _write_json(index_path, {**index, "complete": False, "cells": old_cells})  # the settings, before any image
    progress = _Progress()
    cells: list[dict[str, Any]] = [c for c in old_cells if c.get("scale") not in scales]
    total = 0
    for s in scales:
        bench = benches[s]
        settings = preset.settings_for(s)
        total += len(bench) * len(settings)
        bar = tqdm(
            total=len(bench) * len(settings),
            desc=f"{preset.name} x{s}",
            unit="img",
            disable=args.quiet,
            file=sys.stderr,
        )
        folders = {i: out / f"x{s}" / st.label for i, st in enumerate(settings)}
        images: dict[int, list[str]] = {i: [] for i in folders}
        for n in range(len(bench)):
            name = bench.names[n]
            todo = []
            for i in range(len(settings)):
                if (folders[i] / f"{name}.{fmt}").exists() and not args.overwrite:
                    progress.kept += 1  # made with these settings (see _existing_index)
                    images[i].append(name)
                else:
                    todo.append(i)
            item = _load(bench, n, progress) if todo else None
            if todo and item is None:
                progress.failed += len(todo) - 1  # one line per image, counted per file
            if item is not None:
                hr = item.hr.to(device).unsqueeze(0)
                for i in todo:
                    lr = preset.degrade(hr, scale=s, setting_index=i, dataset=dataset, stem=item.name).lr[0]
                    folders[i].mkdir(parents=True, exist_ok=True)
                    _write(folders[i] / f"{item.name}.{fmt}", lr)
                    images[i].append(item.name)
                    progress.written += 1
            bar.update(len(settings))
        bar.close()
        for i, st in enumerate(settings):
            cells.append(
                {
                    "scale": s,
                    "setting_index": i,
                    **st.as_dict(),
                    "folder": str(folders[i].relative_to(out)),
                    "images": sorted(images[i]),
                }
            )
    index["cells"] = cells
    index["complete"] = progress.failed == 0
    _write_json(index_path, index)
    print(f"{progress.summary('LR images', out)} ({len(cells)} cells of {preset.name})")
    return _exit_code(progress, total)
