"""``blindsr analyze``: analysis plots as PNG (MRDA: IDR t-SNE, RDAM maps, MLN adaptation; DMSR: kernel estimates),
with their raw data."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from blindsr.analysis.adaptation import LoadedMLN
    from blindsr.data.benchmark import BenchmarkImage, BenchmarkSet

_DESCRIPTION = """Analysis plots for MRDA models, as in the ablation figures of the MRDA paper (Sec. IV-C), and for
DMSR's degradation extractor. Each command writes a PNG and its raw data next to it (same name, other suffix), and
prints a short summary.

  idr         t-SNE of the implicit degradation representation (DEN_S output) of LR images synthesised from a
              benchmark set with several degradations; one colour per degradation (Fig. 7, 8)
  rdam        the RDAM modulation maps M = sigmoid(conv(F)) of an MRDA student over images (Fig. 10)
  adaptation  PSNR of an MLN after 0..n inner adaptation steps on Gaussian8 pairs, one curve per MLN (Fig. 9a)
  kernels     DMSR: the kernel width and noise level its degradation extractor estimates, against the true ones

  blindsr analyze idr -m student.safetensors --data-root DATA --dataset B100 -o idr.png
  blindsr analyze rdam -m student.safetensors -i HR/img_001.png --degradation iso:2.6 -o rdam.png
  blindsr analyze adaptation --mln runs/mrda/pretrain --mln runs/mrda/meta --data-root DATA --dataset Set5 -o mln.png
  blindsr analyze kernels -m dmsr-x4 --data-root DATA --dataset Set5 -o kernels.png

The plots need matplotlib: pip install 'blindsr[analysis]'. Exit status: 0 on success, 2 for errors you can fix
(a missing folder, a model without IDR, RDAM or kernel estimate, an image too small), printed as one line."""

_IDR_DESCRIPTION = """t-SNE of the implicit degradation representation (IDR) of an MRDA student (paper Fig. 7, 8).

Every HR image of the dataset (modcropped; optionally its centre --crop) is degraded with each degradation of the
chosen set (21x21 kernel, reflect padding, MATLAB bicubic, 8-bit LR, seeded noise), DEN_S maps each LR image to its
IDR (MRDAStudent(lr).idr), and the IDRs are embedded in 2-D with exact t-SNE (seeded). The separability of the
degradations is measured in the IDR space itself: leave-one-out k-NN accuracy and silhouette score.

Degradation sets (--kind):
  iso    isotropic Gaussian widths: the Gaussian8 widths of the model's scale (x4: 1.8 ... 3.2), or --widths
  aniso  the anisotropic kernels of MRDA Table III (preset mrda-aniso), noise-free
  noise  one isotropic kernel (--kernel-sigma, default 0 = none) and several noise levels (--noise-levels)

Writes OUT.png (the scatter plot) and OUT.npz (idr, labels, label_names, images, embedding, seeds, scores).

  blindsr analyze idr -m student.safetensors --data-root DATA --dataset B100 -o idr-iso.png
  blindsr analyze idr -m student.safetensors --data-root DATA --kind aniso --max-images 30 -o idr-aniso.png
  blindsr analyze idr -m student.safetensors --data-root DATA --kind noise --noise-levels 0 10 20 30 -o idr-noise.png"""

_RDAM_DESCRIPTION = """The RDAM modulation maps of an MRDA student over images (paper Fig. 10).

Every RDA conv modulates its dynamic branch by M = sigmoid(conv(F)) (Eq. 9-10). M is recorded with forward hooks
during one ordinary forward pass (the SR output is unchanged) and averaged over the RDA convs of the network (and,
with --per-block, per RDA block). The figure shows each image on top and its mean map below, with a colourbar.

Inputs are LR images, or HR images when --degradation is given: the LR is then synthesised from the (modcropped)
HR with that degradation (bicubic, iso:SIGMA or aniso:L1,L2,THETA, plus --noise; 21x21 kernel, reflect padding,
MATLAB bicubic, 8-bit LR, seeded noise).

Writes OUT.png, OUT.npz (names, mean_<i>, per_block_<i>, per_conv_<i>, conv_names) and, with --per-block,
OUT-<image>-blocks.png per image.

  blindsr analyze rdam -m student.safetensors -i lr/img_004.png -o rdam.png
  blindsr analyze rdam -m student.safetensors -i HR/a.png HR/b.png --degradation iso:2.6 --per-block -o rdam.png"""

_ADAPTATION_DESCRIPTION = """PSNR of an MLN after 0, 1, ..., n inner adaptation steps (paper Fig. 9a).

For every (LR, HR) pair of an evaluation preset (default gaussian8: 8 isotropic widths of the MLN's scale) the MLN
starts from its own weights and takes n SGD steps on L1(MLN(LR), HR) (functional adaptation, the teacher stage's
inner loop; the Upscaler stays fixed, as in training; the HR image is the target: an oracle). After each step the
PSNR of its SR output is measured (sr-y: MATLAB Y, crop = scale). One curve per --mln: the mean over all pairs.
The MLN weights themselves are never changed.

--mln takes the run folder of an MRDA pretrain or meta stage (with final/networks.safetensors, what `init:
from_stage` loads), or a file written by `blindsr export RUN_DIR --network mln -o FILE`.

Writes OUT.png, OUT.json (curves, per setting and per pair) and OUT.csv (step, one column per MLN).

  blindsr analyze adaptation --mln runs/mrda-x4/pretrain --mln runs/mrda-x4/meta --data-root DATA -o mln.png
  blindsr analyze adaptation --mln mln.safetensors --data-root DATA --dataset Set5 --steps 5 \\
      --inner-lr 1e-2 5e-3 5e-3 5e-3 5e-3 -o mln.png"""

_KERNELS_DESCRIPTION = """Does a DMSR model's degradation extractor follow the blur? Its estimates against the truth.

Every HR image of the dataset (modcropped; optionally its centre --crop) is degraded with each (kernel width σk,
noise level σn) of the grid by DMSR's evaluation protocol (preset dmsr-grid: isotropic 15x15 Gaussian, replicate blur
padding, MATLAB bicubic, float LR, seeded noise), and the model's extractor estimates a kernel K_est and a noise map
N_est from each LR image. Recorded per (image, σk, σn): the width of the true and of the estimated kernel (their
standard deviation about the centre pixel, per axis, in pixels: ≈ σ for a Gaussian of width σ), ||K_est - K_true||,
the true σn and the estimated noise level std(N_est) x 255. An extractor that follows the blur puts the estimated
widths on the diagonal; one that has collapsed to an average kernel gives one width whatever the blur.

Writes OUT.png (estimated vs true kernel width, and estimated vs true noise level: faint points per image, bold
means per setting, one colour per noise level), OUT.csv (one row per image and setting) and OUT.json (the means per
setting, the correlation of true and estimated widths, the mean width error, the model, dataset and grid).

  blindsr analyze kernels -m dmsr-x4 --data-root DATA --dataset Set5 -o kernels.png
  blindsr analyze kernels -m dmsr.safetensors --data-root DATA --dataset B100 --max-images 20 \\
      --widths 0.5 1.5 2.5 --noise-levels 0 25 -o kernels-b100.png"""

_KERNEL_WIDTHS = (0.2, 0.8, 1.3, 2.0, 2.6, 3.0)
_KERNEL_NOISE_LEVELS = (0.0, 15.0, 50.0)


def _non_negative(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {n}")
    return n


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUT.png",
        help="the PNG to write; its .npz/.json/.csv companions go beside it",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT.png and its companions")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _data(p: argparse.ArgumentParser, default_dataset: str) -> None:
    p.add_argument("--data-root", "--data_root", required=True, help="folder with <Set>/HR/ benchmark folders")
    p.add_argument("--dataset", default=default_dataset, help=f"benchmark set (default {default_dataset})")
    p.add_argument(
        "--max-images",
        "--max_images",
        type=_non_negative,
        default=0,
        metavar="N",
        help="use only the first N images (default: all)",
    )
    p.add_argument(
        "--crop",
        type=_non_negative,
        default=0,
        metavar="PX",
        help="use the centre PX x PX of each HR image (faster on large images; default 0: whole images)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` sub-command (with ``idr``, ``rdam``, ``adaptation``, ``kernels``) to the main CLI.

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers()``.
    """
    p = sub.add_parser(
        "analyze",
        help="analysis plots as PNG: MRDA IDR t-SNE, RDAM maps, MLN adaptation curves; DMSR kernel estimates",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=lambda _args: _missing(p))
    which = p.add_subparsers(dest="analysis", metavar="ANALYSIS")

    idr = which.add_parser(
        "idr",
        help="t-SNE of an MRDA student's IDR over several degradations (Fig. 7, 8)",
        description=_IDR_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    idr.add_argument("-m", "--model", required=True, help="an MRDA student: zoo name or .safetensors file")
    _data(idr, "B100")
    idr.add_argument("--kind", choices=("iso", "aniso", "noise"), help="degradation set (default iso)")
    idr.add_argument("--widths", nargs="+", type=float, metavar="SIGMA", help="iso kernel widths (implies --kind iso)")
    idr.add_argument(
        "--noise-levels",
        nargs="+",
        type=float,
        metavar="N",
        help="noise levels 0-255 of --kind noise (default 0 5 10 15 20 25)",
    )
    idr.add_argument(
        "--kernel-sigma", type=float, default=0.0, metavar="SIGMA", help="iso kernel of --kind noise (default 0: none)"
    )
    idr.add_argument("--seed", type=int, default=0, help="seed of the noise and of t-SNE (default 0)")
    idr.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (default 30)")
    idr.add_argument("--tsne-iters", type=int, default=1000, metavar="N", help="t-SNE iterations (default 1000)")
    idr.add_argument("--knn", type=int, default=5, metavar="K", help="k of the k-NN separability score (default 5)")
    _common(idr)
    idr.set_defaults(func=run_idr)

    rdam = which.add_parser(
        "rdam",
        help="RDAM modulation maps of an MRDA student over images (Fig. 10)",
        description=_RDAM_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rdam.add_argument("-m", "--model", required=True, help="an MRDA student: zoo name or .safetensors file")
    rdam.add_argument(
        "-i", "--input", dest="inputs", nargs="+", action="extend", required=True, metavar="IMAGE", help="image files"
    )
    rdam.add_argument(
        "--degradation",
        metavar="SPEC",
        help="inputs are HR: synthesise the LR with bicubic, iso:SIGMA or aniso:L1,L2,THETA (default: inputs are LR)",
    )
    rdam.add_argument("--noise", type=float, default=0.0, help="noise level 0-255 with --degradation (default 0)")
    rdam.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    rdam.add_argument("--per-block", action="store_true", help="also plot the map of every RDA block per image")
    _common(rdam)
    rdam.set_defaults(func=run_rdam)

    ada = which.add_parser(
        "adaptation",
        help="PSNR of MLNs after 0..n inner adaptation steps on Gaussian8 (Fig. 9a)",
        description=_ADAPTATION_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ada.add_argument(
        "--mln",
        dest="mlns",
        action="append",
        required=True,
        metavar="MLN",
        help="run folder of an MRDA pretrain/meta stage, or an exported MLN file; repeat to compare",
    )
    ada.add_argument("--label", dest="labels", action="append", metavar="TEXT", help="legend label per --mln")
    _data(ada, "Urban100")
    ada.add_argument("--preset", default="gaussian8", help="evaluation preset of the pairs (default gaussian8)")
    ada.add_argument("--steps", type=_non_negative, default=10, help="inner steps n (default 10)")
    ada.add_argument(
        "--inner-lr",
        nargs="+",
        type=float,
        default=[1e-2],
        metavar="ALPHA",
        help="inner step size, or one per step (default 1e-2)",
    )
    _common(ada)
    ada.set_defaults(func=run_adaptation)

    ker = which.add_parser(
        "kernels",
        help="DMSR: estimated vs true blur kernel width and noise level of its degradation extractor",
        description=_KERNELS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ker.add_argument("-m", "--model", required=True, help="a DMSR model: zoo name or .safetensors file")
    _data(ker, "Set5")
    ker.add_argument("--scale", type=int, help="the scale (default: the model's; any other is an error)")
    ker.add_argument(
        "--widths",
        nargs="+",
        type=float,
        default=list(_KERNEL_WIDTHS),
        metavar="SIGMA",
        help=f"kernel widths σk (default {' '.join(f'{w:g}' for w in _KERNEL_WIDTHS)})",
    )
    ker.add_argument(
        "--noise-levels",
        nargs="+",
        type=float,
        default=list(_KERNEL_NOISE_LEVELS),
        metavar="N",
        help=f"noise levels σn 0-255 (default {' '.join(f'{n:g}' for n in _KERNEL_NOISE_LEVELS)})",
    )
    _common(ker)
    ker.set_defaults(func=run_kernels)


def _missing(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


# --------------------------------------------------------------------------------------------------------------
# shared helpers


_COMPANIONS = (".npz", ".json", ".csv")


def _png(args: argparse.Namespace) -> Path:
    """``-o OUT.png``, checked before any work: a .png that is not an input (``-i``) and, like its .npz/.json/.csv
    companions, not an existing file unless --overwrite; only its own folder is created."""
    from blindsr.cli.main import CLIError
    from blindsr.files import check_output_file

    path: Path = args.output
    if path.is_dir():
        raise CLIError(f"output {path} is a folder")
    if path.suffix.lower() != ".png":
        raise CLIError(f"the output must be a .png file, got {path}")
    inputs = [Path(p) for p in getattr(args, "inputs", None) or []]
    data_root = getattr(args, "data_root", None)
    if data_root is not None and path.resolve().is_relative_to(Path(data_root).resolve()):
        raise CLIError(f"-o {path} is inside --data-root {data_root}; write the plot elsewhere")
    check_output_file(path, inputs=inputs, overwrite=args.overwrite, suffixes=(".png",))
    for suffix in _COMPANIONS:
        companion = path.with_suffix(suffix)
        if companion.exists():
            check_output_file(companion, inputs=inputs, overwrite=args.overwrite, suffixes=(suffix,))
    return path


def save_npz(path: Path, **arrays: Any) -> None:
    """``np.savez`` written atomically (temporary file, then rename)."""
    import numpy as np

    from blindsr.files import atomic_write

    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def atomic_write_json(path: Path, obj: Any) -> None:
    from blindsr.files import atomic_write_json as write

    write(path, obj)


def _write_csv(path: Path, rows: list[list[object]]) -> None:
    import io

    from blindsr.files import atomic_write_text

    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _need_matplotlib() -> None:
    from blindsr.analysis.plots import MatplotlibMissingError, require_matplotlib
    from blindsr.cli.main import CLIError

    try:
        require_matplotlib()
    except MatplotlibMissingError as e:
        raise CLIError(str(e)) from None


def _bench(data_root: str, dataset: str, scale: int) -> BenchmarkSet:
    from blindsr.cli.main import CLIError
    from blindsr.data.benchmark import BenchmarkSet

    root = Path(data_root)
    if not root.is_dir():
        raise CLIError(f"data root {root} does not exist (expected folders like {root}/{dataset}/HR/*.png)")
    return BenchmarkSet(root=root, name=dataset, scale=scale)


def _count(bench: BenchmarkSet, max_images: int) -> int:
    return min(len(bench), max_images) if max_images > 0 else len(bench)


def _model_name(loaded: Any, given: str) -> str:
    return str(loaded.card.name) if loaded.card is not None else Path(given).name


def _device(name: str) -> torch.device:
    import torch

    from blindsr.cli.main import CLIError

    try:
        return torch.device(name)
    except RuntimeError as e:
        raise CLIError(f"bad --device {name!r}: {e}") from None


# --------------------------------------------------------------------------------------------------------------
# idr


def run_idr(args: argparse.Namespace) -> int:
    """Execute ``analyze idr`` (see :data:`_IDR_DESCRIPTION`).

    Returns:
        0 on success (errors a user can fix raise ``CLIError`` or ``ValueError``: exit 2).
    """
    from blindsr.analysis.idr import analyze_idr, collect_idr, idr_network
    from blindsr.analysis.plots import plot_idr_embedding
    from blindsr.analysis.synth import DegradationKind, degradation_set, set_labels
    from blindsr.cli.main import CLIError
    from blindsr.zoo import load_model

    out = _png(args)
    kind: DegradationKind = args.kind or "iso"
    if args.widths is not None and kind != "iso":
        raise CLIError(f"--widths sets iso kernel widths; it cannot be used with --kind {kind}")
    if args.noise_levels is not None and kind != "noise":
        raise CLIError("--noise-levels needs --kind noise")
    if args.tsne_iters < 1 or args.knn < 1:
        raise CLIError("--tsne-iters and --knn must be >= 1")
    _need_matplotlib()
    device = _device(args.device)

    loaded = load_model(args.model, device=device)
    name = _model_name(loaded, args.model)
    student = idr_network(loaded.model, arch=loaded.arch, name=name)
    scale = loaded.scale
    settings = degradation_set(
        kind=kind, scale=scale, widths=args.widths, noise_levels=args.noise_levels, kernel_sigma=args.kernel_sigma
    )
    bench = _bench(args.data_root, args.dataset, scale)
    n_images = _count(bench, args.max_images)
    print(f"model: {name} ({loaded.arch}, x{scale}, IDR {student.den.idr_dim}-d)")
    print(f"degradations ({kind}): {', '.join(set_labels(settings))}")
    samples = collect_idr(
        student,
        ((item.name, item.hr) for item in _first(bench, n_images)),
        settings,
        scale=scale,
        seed=args.seed,
        dataset=bench.dataset_name,
        crop=args.crop,
        device=device,
        total=n_images,
        progress=not args.quiet,
    )
    n = len(samples.labels)
    if n < 4:
        raise CLIError(f"only {n} samples: use more images or degradations (t-SNE needs at least 4)")
    analysis = analyze_idr(
        samples,
        seed=args.seed,
        perplexity=args.perplexity,
        n_iter=args.tsne_iters,
        k=args.knn,
        progress=not args.quiet,
    )
    sep = analysis.separability
    print(f"IDR: {n} samples ({n_images} images of {bench.dataset_name} x {len(settings)} degradations)")
    print(f"separability in IDR space: {sep.summary()}")
    subtitle = (
        f"{n} LR images of {bench.dataset_name}; t-SNE perplexity {analysis.tsne.perplexity:.3g}, seed {args.seed}\n"
        f"separability in IDR space: {sep.summary()}"
    )
    plot_idr_embedding(
        analysis.tsne.embedding,
        samples.labels,
        samples.label_names,
        path=out,
        title=f"IDR of {name} (x{scale}), {kind} degradations",
        subtitle=subtitle,
    )
    npz = out.with_suffix(".npz")
    analysis.save_npz(
        npz,
        seed=args.seed,
        model=name,
        arch=loaded.arch,
        scale=scale,
        dataset=bench.dataset_name,
        kind=kind,
        crop=args.crop,
        settings=json.dumps(samples.settings),
    )
    print(f"wrote {out} and {npz}")
    return 0


def _first(bench: BenchmarkSet, n: int) -> Iterator[BenchmarkImage]:
    for index in range(n):
        yield bench[index]


# --------------------------------------------------------------------------------------------------------------
# rdam


def run_rdam(args: argparse.Namespace) -> int:
    """Execute ``analyze rdam`` (see :data:`_RDAM_DESCRIPTION`).

    Returns:
        0 on success (errors a user can fix raise ``CLIError`` or ``ValueError``: exit 2).
    """
    import numpy as np

    from blindsr.analysis.plots import RDAMPanel, plot_rdam, plot_rdam_blocks
    from blindsr.analysis.rdam import collect_rdam_maps, rdam_network
    from blindsr.analysis.synth import MIN_LR_SIDE, parse_degradation, setting_label, synthesize_lr
    from blindsr.cli.main import CLIError
    from blindsr.data.io import read_image
    from blindsr.ops.crop import modcrop
    from blindsr.zoo import load_model

    out = _png(args)
    if args.noise and args.degradation is None:
        raise CLIError("--noise needs --degradation (without it the inputs are LR images, used as they are)")
    setting = parse_degradation(args.degradation, noise=args.noise) if args.degradation is not None else None
    for path in args.inputs:
        if not Path(path).is_file():
            raise CLIError(f"input {path} does not exist")
    _need_matplotlib()
    device = _device(args.device)

    loaded = load_model(args.model, device=device)
    name = _model_name(loaded, args.model)
    student = rdam_network(loaded.model, arch=loaded.arch, name=name).to(device).eval()
    scale = loaded.scale
    what = f"LR synthesised with {setting_label(setting)}" if setting is not None else "LR inputs"
    print(f"model: {name} ({loaded.arch}, x{scale}); {what}")

    from tqdm.auto import tqdm

    panels: list[RDAMPanel] = []
    arrays: dict[str, Any] = {}
    stems: list[str] = []
    conv_names: list[str] = []
    for i, path in enumerate(tqdm(args.inputs, desc="RDAM", unit="img", disable=args.quiet)):
        image = read_image(path)
        stem = Path(path).stem
        if setting is not None:
            hr = modcrop(image, scale)
            try:
                lr = synthesize_lr(hr.to(device), [setting], scale=scale, seed=args.seed, key=(stem,))
            except ValueError as e:
                raise CLIError(f"{path}: {e}") from None
            shown, shown_title = hr, "HR"
        else:
            h, w = image.shape[-2:]
            if min(h, w) < MIN_LR_SIDE:
                raise CLIError(f"image too small: {path} is {w}x{h} (at least {MIN_LR_SIDE} px per side needed)")
            lr = image.unsqueeze(0).to(device)
            shown, shown_title = image, "LR input"
        maps = collect_rdam_maps(student, lr, name=name)
        mean = maps.mean[0].float().cpu().numpy()
        per_block = maps.per_block[:, 0].float().cpu().numpy()
        conv_names = maps.names
        stems.append(stem)
        arrays[f"mean_{i}"] = mean
        arrays[f"per_block_{i}"] = per_block
        arrays[f"per_conv_{i}"] = maps.per_conv[:, 0].float().cpu().numpy()
        arrays[f"lr_{i}"] = lr[0].permute(1, 2, 0).float().cpu().numpy()
        hwc = shown.permute(1, 2, 0).float().cpu().numpy()
        panels.append(RDAMPanel(name=stem, image=hwc, image_title=shown_title, modulation=mean))
        h, w = mean.shape
        print(
            f"{stem}: LR {w}x{h}, M mean {mean.mean():.3f} (min {mean.min():.3f}, max {mean.max():.3f}, "
            f"std {mean.std():.3f}) over {len(maps.names)} RDA convs"
        )
        if args.per_block:
            blocks_png = out.with_name(f"{out.stem}-{_safe(stem, i, stems)}-blocks.png")
            plot_rdam_blocks(per_block, path=blocks_png, title=f"RDAM maps per RDA block: {stem} ({name}, {what})")
            print(f"  per-block maps: {blocks_png}")
    plot_rdam(
        panels,
        path=out,
        title=f"RDAM modulation maps of {name} (x{scale}, {what}; mean over {len(conv_names)} RDA convs)",
        map_label="M (mean over RDA convs)",
    )
    npz = out.with_suffix(".npz")
    save_npz(
        npz,
        names=np.array(stems),
        conv_names=np.array(conv_names),
        model=np.array(name),
        scale=np.array(scale),
        degradation=np.array(json.dumps(setting.as_dict() if setting is not None else None)),
        seed=np.array(args.seed),
        **arrays,
    )
    print(f"wrote {out} and {npz}")
    return 0


def _safe(stem: str, index: int, stems: list[str]) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
    return keep if stems.count(stem) == 1 else f"{keep}_{index}"


# --------------------------------------------------------------------------------------------------------------
# adaptation


def run_adaptation(args: argparse.Namespace) -> int:
    """Execute ``analyze adaptation`` (see :data:`_ADAPTATION_DESCRIPTION`).

    Returns:
        0 on success (errors a user can fix raise ``CLIError`` or ``ValueError``: exit 2).
    """
    from blindsr.analysis.adaptation import load_mln, run_adaptation, step_sizes
    from blindsr.analysis.idr import center_crop
    from blindsr.analysis.plots import plot_adaptation
    from blindsr.cli.main import CLIError
    from blindsr.degradations import get_eval_preset

    out = _png(args)
    labels = args.labels or []
    if labels and len(labels) != len(args.mlns):
        raise CLIError(f"give one --label per --mln ({len(args.mlns)}), got {len(labels)}")
    rates = step_sizes(args.inner_lr, args.steps)
    preset = get_eval_preset(args.preset)
    _need_matplotlib()
    device = _device(args.device)

    mlns: list[LoadedMLN] = []
    for i, source in enumerate(args.mlns):
        mlns.append(load_mln(source, device=device, label=labels[i] if labels else None))
    names = [m.label for m in mlns]
    if len(set(names)) != len(names):
        raise CLIError(f"two MLNs have the same label ({', '.join(names)}): set them with --label")
    scales = {m.scale for m in mlns}
    if len(scales) != 1:
        raise CLIError(f"the MLNs upscale by different factors: {', '.join(f'{m.label} x{m.scale}' for m in mlns)}")
    scale = mlns[0].scale
    settings = preset.settings_for(scale)
    bench = _bench(args.data_root, args.dataset, scale)
    n_images = _count(bench, args.max_images)
    for m in mlns:
        print(f"MLN {m.label}: x{m.scale}, {m.source}")

    def pairs() -> Iterator[tuple[str, str, torch.Tensor, torch.Tensor]]:
        for item in _first(bench, n_images):
            hr = center_crop(item.hr, size=args.crop, scale=scale).to(device).unsqueeze(0)
            for i, setting in enumerate(settings):
                lr = preset.degrade(hr, scale=scale, setting_index=i, dataset=bench.dataset_name, stem=item.name).lr
                yield item.name, setting.label, lr, hr

    curves = run_adaptation(mlns, pairs(), inner_lr=rates, total=n_images * len(settings), progress=not args.quiet)
    n_pairs = curves[0].psnr.shape[0]
    steps = list(range(args.steps + 1))
    rate_text = f"{rates[0]:g}" if len(set(rates)) <= 1 else "/".join(f"{r:g}" for r in rates)
    header = (
        f"MLN adaptation on {bench.dataset_name} x{scale}, {preset.name} ({n_pairs} pairs = {n_images} images x "
        f"{len(settings)} settings), inner lr {rate_text or '-'}, Upscaler fixed; PSNR (dB, {preset.metric_protocol})"
    )
    print(header)
    width = max(8, *(len(m.label) for m in mlns))
    print("step  " + "  ".join(f"{m.label:>{width}}" for m in mlns))
    for k in steps:
        print(f"{k:>4}  " + "  ".join(f"{c.mean[k]:>{width}.3f}" for c in curves))
    if args.steps:
        print("gain  " + "  ".join(f"{c.mean[-1] - c.mean[0]:>+{width}.3f}" for c in curves))

    plot_adaptation(
        steps,
        [(c.label, c.mean) for c in curves],
        path=out,
        title=f"MLN adaptation: {bench.dataset_name} x{scale}, {preset.name} ({n_pairs} pairs), inner lr {rate_text}",
    )
    record = {
        "dataset": bench.dataset_name,
        "scale": scale,
        "preset": preset.name,
        "metric_protocol": preset.metric_protocol,
        "steps": args.steps,
        "inner_lr": rates,
        "adapted": "all MLN parameters but the Upscaler",
        "n_images": n_images,
        "crop": args.crop,
        "n_pairs": n_pairs,
        "curves": [c.record() for c in curves],
    }
    json_path = out.with_suffix(".json")
    atomic_write_json(json_path, record)
    csv_path = out.with_suffix(".csv")
    _write_csv(
        csv_path, [["step", *(c.label for c in curves)], *([k, *(f"{c.mean[k]:.4f}" for c in curves)] for k in steps)]
    )
    print(f"wrote {out}, {json_path} and {csv_path}")
    return 0


# --------------------------------------------------------------------------------------------------------------
# kernels


def run_kernels(args: argparse.Namespace) -> int:
    """Execute ``analyze kernels`` (see :data:`_KERNELS_DESCRIPTION`).

    Returns:
        0 on success (errors a user can fix raise ``CLIError`` or ``ValueError``: exit 2).
    """
    import math

    from blindsr.analysis.kernels import KERNEL_PROTOCOL, analyze_kernels, dmsr_network
    from blindsr.analysis.plots import plot_kernel_estimates
    from blindsr.cli.main import CLIError
    from blindsr.zoo import load_model

    out = _png(args)
    _need_matplotlib()
    device = _device(args.device)

    loaded = load_model(args.model, device=device)
    name = _model_name(loaded, args.model)
    net = dmsr_network(loaded.model, arch=loaded.arch, name=name)
    scale = loaded.scale
    if args.scale is not None and args.scale != scale:
        raise CLIError(f"{name} upscales x{scale}: --scale {args.scale} does not match (leave it out)")
    bench = _bench(args.data_root, args.dataset, scale)
    n_images = _count(bench, args.max_images)
    print(f"model: {name} ({loaded.arch}, x{scale}); LR synthesised by the {KERNEL_PROTOCOL} protocol")
    analysis = analyze_kernels(
        net,
        bench,
        scale=scale,
        widths=args.widths,
        noise_levels=args.noise_levels,
        max_images=args.max_images,
        crop=args.crop,
        device=device,
        progress=not args.quiet,
    )
    widths = list(dict.fromkeys(s.sigma_k for s in analysis.settings))
    levels = list(dict.fromkeys(s.sigma_n for s in analysis.settings))
    cell = {(s.sigma_k, s.sigma_n): s for s in analysis.settings}
    print(
        f"mean estimated kernel width (px) on {bench.dataset_name} x{scale}, {n_images} images x "
        f"{len(analysis.settings)} settings:"
    )
    print(f"{'σk':>5}  {'true':>6}  " + "  ".join(f"{'σn ' + format(n, 'g'):>8}" for n in levels))
    for w in widths:
        row = "  ".join(f"{cell[(w, n)].est_width_mean:>8.3f}" for n in levels)
        print(f"{w:>5g}  {cell[(w, levels[0])].true_width:>6.3f}  {row}")
    noise_means = ", ".join(
        f"σn {n:g}: {sum(cell[(w, n)].est_noise_mean for w in widths) / len(widths):.2f}" for n in levels
    )
    print(f"mean estimated noise level (std(N_est) x 255): {noise_means}")
    r = analysis.correlation
    r_text = f"{r:.3f}" if math.isfinite(r) else "undefined (a constant width)"
    score = (
        f"correlation of true and estimated widths r = {r_text}; "
        f"mean |width error| {analysis.mean_abs_width_error:.3f} px"
    )
    print(score)

    plot_kernel_estimates(
        analysis.column("true_width"),
        analysis.column("est_width"),
        analysis.column("sigma_n"),
        analysis.column("est_noise"),
        path=out,
        title=f"Degradation extractor of {name} (x{scale}) on {bench.dataset_name}, {n_images} images",
        subtitle=score,
    )
    record = {
        "model": name,
        "arch": loaded.arch,
        "dataset": bench.dataset_name,
        "scale": scale,
        "protocol": KERNEL_PROTOCOL,
        "widths": widths,
        "noise_levels": levels,
        "n_images": n_images,
        "crop": args.crop,
        **analysis.summary(),
    }
    json_path = out.with_suffix(".json")
    atomic_write_json(json_path, record)
    csv_path = out.with_suffix(".csv")
    header: list[object] = [
        "image",
        "sigma_k",
        "sigma_n",
        "true_width",
        "est_width",
        "width_error",
        "kernel_l2",
        "est_noise",
    ]
    rows: list[list[object]] = [header]
    for rec in analysis.records:
        rows.append(
            [
                rec.image,
                f"{rec.sigma_k:g}",
                f"{rec.sigma_n:g}",
                f"{rec.true_width:.6f}",
                f"{rec.est_width:.6f}",
                f"{rec.width_error:.6f}",
                f"{rec.kernel_l2:.6f}",
                f"{rec.est_noise:.4f}",
            ]
        )
    _write_csv(csv_path, rows)
    print(f"wrote {out}, {json_path} and {csv_path}")
    return 0
