"""``blindsr upscale``: super-resolve image files and folders (Real-ESRGAN-style flags), tiled, blind."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from blindsr.data.user_images import ImageMode
    from blindsr.inference import Upscaler

_DESCRIPTION = """Super-resolve images with a blind-SR model. The degradation (DMSR: blur kernel and noise) is
estimated once per image, then the image is restored tile by tile with that estimate.

  blindsr upscale photo.jpg                          -> results/photo_x4.jpg (model dmsr-x4)
  blindsr upscale photo.jpg -o big.png               -> big.png (one input file and -o FILE.ext: that file)
  blindsr upscale LR/ -o SR/ -m dmsr-x4 --tile auto
  blindsr upscale LR/ -o SR/ -r --save-degradation   sub-folders kept; + _kernel.png, _noise.png, _noise.npy
  blindsr upscale scan.tif -s 2 --ext png            -> results/scan_x2.png: the x2 network (dmsr-x2)
  blindsr upscale scan.tif -s 2.5                    -> results/scan_x2.5.tif: dmsr-x3, bicubic to x2.5
  blindsr upscale img.png -m runs/export/model.safetensors --device cuda --precision bf16
  blindsr upscale img.png --fp32 -g 0                Real-ESRGAN's spellings of --precision fp32 --device cuda:0

Inputs: files and folders (folders: the image files directly inside, or with --recursive the whole tree, keeping
its sub-folders under OUT). Images are read as they are: gray stays gray, alpha is upscaled separately with
bicubic, 16-bit PNGs stay 16-bit, the EXIF orientation is applied, EXIF and ICC profiles are kept. Inputs above
67 megapixels or below 8 px per side are refused.

Memory: before an image is decoded (from its header) and again before its output is allocated, the memory it
needs is estimated (output buffers, encoding the file, the input, one tile's working set on the CPU); an image
above the limit is refused (`error: PATH: needs about 49.6 GB (...), above the limit of 17.2 GB; raise it with
--max-memory or use a smaller --outscale`) and the others still run. The limit is 75 % of the available RAM
unless --max-memory says otherwise. --tile auto on the CPU keeps a tile's working set to about 1 GB (and a
quarter of --max-memory); on a GPU it follows the free GPU memory.

Outputs: OUT/<stem><suffix>.<ext>, the suffix by default _x<final scale> (photo_x4.png, photo_x2.5.png, so runs
at two scales keep both; earlier versions wrote _out, and --suffix _out gives those names; a suffix may not contain
a path separator), or exactly OUT when the only input is a file and OUT ends with an image extension (.png, .jpg,
...; its format then follows that extension, as an explicit --ext would). --ext auto keeps the input's format
unless it cannot hold the image (then PNG: e.g. alpha from a BMP, 16 bits from a TIFF); an explicit --ext converts
(jpg and bmp drop alpha; only png keeps 16 bits). Existing outputs are skipped unless --overwrite; an output that
would replace an input is refused.
With --save-degradation the side files belong to their output: an image is skipped when any of them exists
(without --overwrite), and with --overwrite the ones this model does not produce (a kernel and noise map from a
DMSR run, when the model is MRDA) are removed, so no file from an earlier run stands beside the new output.

Progress: one bar over the images, and a second one over the tiles (with an ETA) for an image cut into more than
one tile; --quiet shows neither.

Exit status: 0 when every image was written (or skipped as existing); 1 when some failed (each failure is one
line, `error: PATH: reason`, and the others are still written; the last line says `N of M failed`); 2 for usage
errors (unknown model, missing input, bad option)."""

_EXTS = ("auto", "png", "jpg", "webp", "tif", "bmp")
_FLAGS = ("--max-memory", "--outscale", "--tile")  # how memory refusals name the limit, the outscale and the tile


def _tile(value: str) -> int | str:
    if value.strip().lower() == "auto":
        return "auto"
    try:
        tile = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a tile size in pixels, 0 (none) or 'auto', got {value!r}") from None
    if tile < 0:
        raise argparse.ArgumentTypeError(f"tile must be >= 0, got {tile}")
    return tile


def _gpu_device(value: str) -> str:
    try:
        index = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a GPU number such as 0, got {value!r}") from None
    if index < 0:
        raise argparse.ArgumentTypeError(f"a GPU number is >= 0, got {index}")
    return f"cuda:{index}"


def default_suffix(outscale: float) -> str:
    """The default ``--suffix``: ``_x<final scale>`` (``_x4``, ``_x2.5``), so runs at other scales do not collide.

    >>> default_suffix(4.0), default_suffix(2.5)
    ('_x4', '_x2.5')
    """
    return f"_x{outscale:g}"


def _memory_size(value: str) -> int:
    from blindsr.inference.upscaler import parse_memory_size

    try:
        return parse_memory_size(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _write_cost(mode: ImageMode, bit_depth: int, suffix: str) -> float:
    """Bytes per output pixel that encoding the file needs besides the float image (``write_image_like`` today,
    measured on 2000x2000 images: 8-bit gray 16, gray+alpha 29, RGB 36, RGBA 49; 16-bit gray 21; a 16-bit colour
    PNG 324, its encoder being plain Python)."""
    from blindsr.data.user_images import format_can_hold

    deep = bit_depth > 8 and suffix.lower() in (".png", ".tif", ".tiff")
    if deep and mode in ("rgb", "rgba") and format_can_hold(suffix, mode=mode, bit_depth=16):
        return 330.0
    return {"gray": 18.0, "gray_alpha": 30.0, "rgb": 38.0, "rgba": 50.0}.get(mode, 50.0) + (4.0 if deep else 0.0)


def _direct_write_cost(mode: ImageMode, bit_depth: int) -> float:
    """Bytes per output pixel that encoding integer pixels needs (``write_pixels_like``): Pillow's copy of the
    pixels; for 16-bit colour PNGs, the numpy encoder's five candidate row filters (measured with the float
    writer: 324 bytes per pixel)."""
    channels = {"gray": 1, "gray_alpha": 2, "rgb": 3, "rgba": 4}.get(mode, 4)
    if bit_depth > 8 and channels > 1:
        return 330.0
    return float(channels * (2 if bit_depth > 8 else 1))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``upscale`` sub-command to the main CLI.

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers()``.
    """
    p = sub.add_parser(
        "upscale",
        help="super-resolve image files and folders (tiled; gray, alpha and 16-bit kept)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files and/or folders")
    p.add_argument(
        "-i",
        "--input",
        dest="more_inputs",
        action="extend",
        nargs="+",
        default=[],
        metavar="INPUT",
        help="more inputs (Real-ESRGAN's spelling)",
    )
    p.add_argument(
        "-o",
        "--output",
        default="results",
        metavar="OUT",
        help="output folder (default: results), or the output file for a single input file (e.g. big.png)",
    )
    p.add_argument(
        "-m",
        "-n",
        "--model",
        "--model-name",
        "--model_name",
        "--model-path",
        "--model_path",
        dest="model",
        default=None,
        metavar="MODEL",
        help="model name (see `blindsr models`) or release .safetensors file (default: the shipped DMSR model of "
        "the smallest scale >= --outscale, else the largest; dmsr-x4 without --outscale)",
    )
    p.add_argument(
        "-s",
        "--outscale",
        type=float,
        metavar="S",
        help="final scale; the output is resized from the model's scale with MATLAB bicubic (default: the model's)",
    )
    p.add_argument(
        "-t",
        "--tile",
        type=_tile,
        default="auto",
        metavar="N|auto",
        help="tile size in LR pixels; 0 = whole images; auto (default) = about 1 GB per tile on the CPU, from the free "
        "memory on a GPU, halved on out-of-memory",
    )
    p.add_argument(
        "--tile-pad",
        "--tile_pad",
        dest="tile_pad",
        type=int,
        default=16,
        metavar="P",
        help="context pixels around each tile (default 16)",
    )
    p.add_argument(
        "--max-memory",
        "--max_memory",
        dest="max_memory",
        type=_memory_size,
        default=None,
        metavar="SIZE",
        help="the most memory one image may need, e.g. 8G or 512M (default: 75%% of the available RAM); larger "
        "images are refused before they are decoded",
    )
    p.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps")
    p.add_argument(
        "-g",
        "--gpu-id",
        "--gpu_id",
        dest="device",
        type=_gpu_device,
        metavar="N",
        help="Real-ESRGAN's spelling of --device cuda:N",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="fp32 (default), or bf16/fp16 through autocast (fp16 falls back to fp32 on the CPU)",
    )
    p.add_argument(
        "--fp32",
        dest="precision",
        action="store_const",
        const="fp32",
        help="Real-ESRGAN's spelling of --precision fp32 (already the default)",
    )
    p.add_argument("--ext", choices=_EXTS, default="auto", help="output format (default: auto, see above)")
    p.add_argument(
        "--suffix",
        default=None,
        help="appended to each output's stem, no path separators (default: _x<final scale>, e.g. _x4; "
        "--suffix _out for the names of earlier versions)",
    )
    p.add_argument("--quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1-100 (default 95)")
    p.add_argument(
        "--save-degradation",
        "--save_degradation",
        dest="save_degradation",
        action="store_true",
        help="also write <stem><suffix>_kernel.png (enlarged kernel), _noise.png (0.5 + 4 x noise) and "
        "_noise.npy (float32 HxWx3) (DMSR), or _idr.npy (MRDA) next to each output",
    )
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders, keeping their structure")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars (over the images, over the tiles)")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class _Job:
    source: Path
    relative: Path  # where the output goes under OUT, with the input's name


def _collect(inputs: list[str], out: Path, *, recursive: bool) -> list[_Job]:
    from blindsr.cli.main import CLIError
    from blindsr.data.images import list_images

    jobs: list[_Job] = []
    out_resolved = out.resolve()
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            root = path.resolve()
            inside = out_resolved != root and out_resolved.is_relative_to(root)
            for file in list_images(path, recursive=recursive):
                if inside and file.resolve().is_relative_to(out_resolved):
                    continue  # earlier outputs in OUT inside the input folder are not inputs
                jobs.append(_Job(source=file, relative=file.relative_to(path)))
        elif path.is_file():
            jobs.append(_Job(source=path, relative=Path(path.name)))
        else:
            raise CLIError(f"input {path} does not exist")
    if not jobs:
        raise CLIError(f"no images found in {', '.join(inputs)}" + ("" if recursive else " (use -r for sub-folders)"))
    return jobs


_EXT_ALIASES = {"jpg": ("jpg", "jpeg"), "tif": ("tif", "tiff")}


def _output_file(inputs: list[str], out: Path) -> Path | None:
    """`out` as the output file when there is one input file and `out` names an image file (not a folder)."""
    from blindsr.data.images import IMAGE_EXTENSIONS

    if len(inputs) != 1 or not Path(inputs[0]).is_file() or out.is_dir():
        return None
    return out if out.suffix.lower() in IMAGE_EXTENSIONS else None


def _suffix_for(source: Path, ext: str) -> str:
    from blindsr.data.images import IMAGE_EXTENSIONS

    if ext != "auto":
        return f".{ext}"
    suffix = source.suffix.lower()
    return suffix if suffix in IMAGE_EXTENSIONS else ".png"


def _side_files(output: Path) -> list[Path]:
    """--save-degradation files next to `output`: kernel picture, noise picture, noise array, IDR (MRDA)."""
    ends = ("_kernel.png", "_noise.png", "_noise.npy", "_idr.npy")
    return [output.with_name(f"{output.stem}{end}") for end in ends]


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write a float32 .npy atomically (temporary file, then rename)."""
    import numpy as np

    from blindsr.files import atomic_write

    atomic_write(path, lambda fh: np.save(fh, array.astype(np.float32)))


def _describe_tile(upscaler: Upscaler) -> str:
    tile = upscaler.tile
    if upscaler.auto_tile:
        return f"auto = {tile} px (images that fit in memory run whole), pad {upscaler.tile_pad}"
    if tile is None:
        return "none (whole images)"
    return f"{tile} px, pad {upscaler.tile_pad}"


def default_model(outscale: float | None) -> str:
    """The zoo model `upscale` uses without ``-m``: the DMSR model (``dmsr-x2``, ``dmsr-x3``, ``dmsr-x4``) of the
    smallest shipped scale >= `outscale`, so the network works at the scale asked for and bicubic only shrinks its
    output (or the largest, which bicubic then enlarges); ``dmsr-x4`` when `outscale` is None.
    """
    from blindsr.zoo.cards import MODEL_CARDS

    if outscale is None:
        return "dmsr-x4"
    scales = sorted({c.scale for c in MODEL_CARDS if c.name.startswith(f"dmsr-x{c.scale}.") and c.arch == "dmsr"})
    if not scales:
        return "dmsr-x4"
    chosen = next((s for s in scales if s >= outscale - 1e-9), scales[-1])
    return f"dmsr-x{chosen}"


def run(args: argparse.Namespace) -> int:
    """Execute ``upscale``.

    Args:
        args: parsed arguments (see :func:`register`).

    Returns:
        0 when every image was written or skipped, 1 when some failed (usage errors raise ``CLIError``: exit 2).
    """
    import torch
    from tqdm.auto import tqdm

    from blindsr.cli.main import CLIError
    from blindsr.data.image_errors import ImageReadError, ImageWriteError
    from blindsr.data.images import image_size, write_image
    from blindsr.data.user_images import format_can_hold, loaded_to_array, read_image_any, write_pixels_like
    from blindsr.data.user_images import write_image_like as write_like
    from blindsr.files import check_name_part
    from blindsr.inference import Upscaler, kernel_image, noise_image
    from blindsr.inference.upscaler import MemoryLimitError, format_bytes
    from blindsr.zoo import parameter_counts

    inputs = [*args.inputs, *args.more_inputs]
    if not inputs:
        raise CLIError("give at least one input file or folder")
    if args.suffix is not None:
        check_name_part(args.suffix, flag="--suffix")  # `--suffix /../../x` would write outside OUT
    if not 1 <= args.quality <= 100:
        raise CLIError(f"--quality must be in 1..100, got {args.quality}")
    out = Path(args.output)
    out_file = _output_file(inputs, out)  # `upscale photo.jpg -o big.png`: that file, not a folder
    if out_file is not None:
        if args.ext != "auto" and out_file.suffix.lower().lstrip(".") not in _EXT_ALIASES.get(args.ext, (args.ext,)):
            raise CLIError(f"-o {out_file} and --ext {args.ext} disagree; give one of them")
        out = out_file.parent
    elif out.exists() and not out.is_dir():
        raise CLIError(f"output {out} exists and is not a folder")
    if not out.exists() and not out.parent.is_dir():  # OUT itself is created, not a tree above it
        raise CLIError(f"cannot create {out}: its folder {out.parent} does not exist (only OUT itself is created)")
    jobs = _collect(inputs, out, recursive=args.recursive)
    model = args.model if args.model is not None else default_model(args.outscale)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        upscaler = Upscaler(
            model,
            tile=args.tile,
            tile_pad=args.tile_pad,
            device=args.device,
            precision=args.precision,
            outscale=args.outscale,
            max_memory=args.max_memory,
        )
        tile_text = _describe_tile(upscaler)
    loaded = upscaler.model
    name = loaded.card.name if loaded.card is not None else str(loaded.path)
    params = parameter_counts(loaded.model).get("total", 0)
    print(f"model: {name} ({loaded.arch}, x{loaded.scale}, {params / 1e6:.2f} M parameters)")
    print(f"device: {upscaler.device}, precision: {upscaler.precision}, tile: {tile_text}")
    source = "75 % of the available RAM; --max-memory" if upscaler.max_memory_is_default else "--max-memory"
    print(f"memory limit: {format_bytes(upscaler.max_memory)} per image ({source})")
    for w in caught:
        print(f"note: {w.message}")
    if args.outscale is not None and upscaler.outscale != upscaler.scale:
        print(f"outscale: {upscaler.outscale:g} (the x{upscaler.scale} output is resized with MATLAB bicubic)")
    suffix = args.suffix if args.suffix is not None else default_suffix(upscaler.outscale)
    model_name = name
    reliability = _kernel_reliability(loaded.card, model_name) if args.save_degradation else ""

    input_paths = {job.source.resolve() for job in jobs}
    input_inodes = {_inode(job.source) for job in jobs} - {None}  # hard links, case-insensitive names
    claimed: dict[Path, Path] = {}
    failed = written = skipped = 0
    total = len(jobs)

    def fail(source: Path, reason: str) -> None:
        nonlocal failed
        failed += 1
        tqdm.write(f"error: {source}: {reason}", file=sys.stderr)

    def claim(source: Path, target: Path) -> bool:
        """False (and the failure reported) when `target` is an input or another input's output."""
        outputs = [target, *(_side_files(target) if args.save_degradation else [])]
        clash = next((p for p in outputs if p.resolve() in input_paths or _inode(p) in input_inodes), None)
        if clash is not None:
            fail(source, f"refusing to overwrite the input {clash} (use another -o or --suffix)")
            return False
        owner = claimed.setdefault(target.resolve(), source)
        if owner != source:
            fail(source, f"output {target} is also the output of {owner} (rename one, or use --suffix)")
            return False
        return True

    def exists(target: Path) -> bool:
        """Whether `target`, or with --save-degradation any of its side files, is already there."""
        return any(p.exists() for p in [target, *(_side_files(target) if args.save_degradation else [])])

    bar = tqdm(jobs, desc="upscale", unit="img", disable=args.quiet, file=sys.stderr)
    tiles = _TileBar(disabled=args.quiet)
    missing_noted = False
    for job in bar:
        if out_file is not None:
            target = out_file
        else:
            name = f"{job.relative.stem}{suffix}{_suffix_for(job.source, args.ext)}"
            target = out / job.relative.parent / name
        if not claim(job.source, target):
            continue
        if not args.overwrite and exists(target):
            skipped += 1
            continue
        try:
            try:
                height, width = image_size(job.source)
            except ImageReadError:
                pass  # read_image_any says why, in its own words
            else:  # from the header, before decoding: the cheapest kind (8-bit gray) is a lower bound for any image
                cost = _write_cost("gray", 8, target.suffix)
                upscaler.check_memory(height, width, mode="gray", bit_depth=8, extra_per_pixel=cost, flags=_FLAGS)
            image = read_image_any(job.source, min_side=upscaler.min_side)
        except (ImageReadError, FileNotFoundError) as e:
            fail(job.source, e.reason if isinstance(e, ImageReadError) else str(e))
            continue
        except MemoryLimitError as e:
            fail(job.source, str(e))
            continue
        if (
            out_file is None
            and args.ext == "auto"
            and not format_can_hold(target.suffix, mode=image.mode, bit_depth=image.bit_depth)
        ):
            target = target.with_suffix(".png")  # e.g. alpha read from a BMP, 16 bits from a colour TIFF
            if not claim(job.source, target):
                continue
            if not args.overwrite and exists(target):
                skipped += 1
                continue
        outputs = [target, *(_side_files(target) if args.save_degradation else [])]
        tile_before = upscaler.tile if upscaler.auto_tile else None
        # the output is assembled tile by tile straight into its uint8/uint16 pixels when the file keeps the image's
        # kind (the usual case); conversions (16 -> 8 bits, alpha dropped, float inputs) go through a float image
        direct = image.bit_depth in (8, 16) and format_can_hold(
            target.suffix, mode=image.mode, bit_depth=image.bit_depth
        )
        try:
            cost = (
                _direct_write_cost(image.mode, image.bit_depth)
                if direct
                else _write_cost(image.mode, image.bit_depth, target.suffix)
            )
            upscaler.check_memory(
                image.height,
                image.width,
                mode=image.mode,
                bit_depth=image.bit_depth,
                output="array" if direct else "loaded",
                extra_per_pixel=cost,
                flags=_FLAGS,
            )
        except MemoryLimitError as e:
            fail(job.source, str(e))
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # integer pixels (direct) or a float LoadedImage
                try:
                    result: Any = upscaler.upscale_with_degradation(
                        loaded_to_array(image) if direct else image, progress=tiles.update
                    )
                finally:
                    tiles.close()
            for w in caught:
                tqdm.write(f"note: {job.source}: {w.message}", file=sys.stderr)
            if direct:
                write_pixels_like(target, result.image, like=image, quality=args.quality)
            else:
                write_like(target, result.image, quality=args.quality)
            if args.save_degradation:
                kernel_path, noise_path, npy_path, idr_path = outputs[1:]
                if result.kernel is not None:
                    from blindsr.analysis.kernels import kernel_width  # what `blindsr analyze kernels` measures

                    write_image(kernel_path, kernel_image(result.kernel))
                    blur = float(kernel_width(torch.from_numpy(result.kernel)))
                    tqdm.write(f"{job.source}: estimated blur σ ≈ {blur:.2f} px ({reliability})")
                if result.noise is not None:
                    write_image(noise_path, noise_image(result.noise))
                    write_image(npy_path, torch.from_numpy(result.noise).permute(2, 0, 1))
                if result.idr is not None:
                    _save_npy(idr_path, result.idr)
                produced = {
                    kernel_path: result.kernel is not None,
                    noise_path: result.noise is not None,
                    npy_path: result.noise is not None,
                    idr_path: result.idr is not None,
                }
                for path, made in produced.items():  # with --overwrite: files of an earlier run are not current
                    if not made:
                        path.unlink(missing_ok=True)
                if not missing_noted and (result.kernel is None or result.noise is None):
                    missing_noted = True
                    tqdm.write(f"note: {_missing_degradation(model_name, result)}", file=sys.stderr)
        except torch.OutOfMemoryError:
            tile = upscaler.tile
            used = "none (whole image)" if tile is None else f"{tile} px"
            fail(job.source, f"out of memory (tile: {used}); try a smaller --tile, or --tile auto")
            continue
        except ImageWriteError as e:
            fail(job.source, e.reason)
            continue
        except (ValueError, OSError, RuntimeError) as e:
            if os.environ.get("BLINDSR_DEBUG"):
                raise
            fail(job.source, f"{type(e).__name__}: {_first_line(e)}")
            continue
        written += 1
        if upscaler.auto_tile and upscaler.tile != tile_before:
            tqdm.write(f"note: tile reduced to {upscaler.tile} px after running out of memory", file=sys.stderr)
    bar.close()

    summary = f"wrote {written} of {total} image(s) to {out_file if out_file is not None else out}"
    if skipped:
        summary += f"; skipped {skipped} existing (use --overwrite to replace them)"
    print(summary)
    if failed:
        print(f"{failed} of {total} failed", file=sys.stderr)
        return 1
    return 0


class _TileBar:
    """The per-tile bar of one image (tqdm, with an ETA), below the images' bar; only for images of several tiles.

    ``update`` is the Upscaler's ``progress`` callback: ``(0, total)`` opens the bar (a new total after an
    out-of-memory retry opens a new one), ``(done, total)`` moves it; ``close`` removes it from the screen.
    """

    def __init__(self, *, disabled: bool) -> None:
        self._disabled = disabled
        self._bar: Any = None

    def update(self, done: int, total: int) -> None:
        from tqdm.auto import tqdm

        if self._disabled or total <= 1:
            return
        if self._bar is None or self._bar.total != total or done == 0:
            self.close()
            self._bar = tqdm(total=total, desc="tiles", unit="tile", leave=False, position=1, file=sys.stderr)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _kernel_reliability(card: Any, name: str) -> str:
    """The words printed after an estimated blur width: how far this model's estimate can be trusted."""
    text = card.kernel_estimate_reliability() if card is not None else None
    if text is not None:
        return f"{text}; docs/results.md section 15"
    return f"how well this estimate follows the true blur is not measured; `blindsr analyze kernels -m {name}` does"


def _missing_degradation(name: str, result: Any) -> str:
    """Which of the kernel / noise files of --save-degradation a model does not produce."""
    missing = [what for what, value in (("blur kernel", result.kernel), ("noise map", result.noise)) if value is None]
    files = [end for end, value in (("_kernel.png", result.kernel), ("_noise.png/.npy", result.noise)) if value is None]
    return (
        f"{name} estimates no {' and no '.join(missing)}: --save-degradation writes no {', '.join(files)} "
        "(and removes any an earlier run left)"
    )


def _inode(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, None otherwise: what identifies a file under any of its names."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
