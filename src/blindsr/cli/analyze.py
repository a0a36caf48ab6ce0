"""``blindsr analyze``: analysis plots as PNG (MRDA: IDR t-SNE, RDAM maps, MLN adaptation; DMSR: kernel estimates),
with their raw data.

Only the wiring lives here: the arguments, the checks made before any work, loading the models and data, and the
printing. Each command calls one function of :mod:`blindsr.analysis` (``idr_report``, ``rdam_report``,
``adaptation_report``, ``kernel_report``), prints its ``.summary()``, draws it with ``blindsr.analysis.plots`` and
writes its raw data with its ``.save()``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from blindsr.analysis.adaptation import LoadedMLN
    from blindsr.data.benchmark import BenchmarkSet

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

The plots need matplotlib (in the clone: pip install -e '.[analysis]'). Exit status: 0 on success, 2 for errors you
can fix (a missing folder, a model without IDR, RDAM or kernel estimate, an image too small), printed as one line."""

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
    from blindsr.analysis.idr import idr_network, idr_report
    from blindsr.analysis.plots import plot_idr_report
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
    print(f"model: {name} ({loaded.arch}, x{scale}, IDR {student.den.idr_dim}-d)")
    print(f"degradations ({kind}): {', '.join(set_labels(settings))}")
    report = idr_report(
        student,
        bench,
        settings,
        scale=scale,
        kind=kind,
        model=name,
        arch=loaded.arch,
        seed=args.seed,
        max_images=args.max_images,
        crop=args.crop,
        perplexity=args.perplexity,
        n_iter=args.tsne_iters,
        k=args.knn,
        device=device,
        progress=not args.quiet,
    )
    print(report.summary())
    plot_idr_report(report, path=out)
    npz = report.save(out.with_suffix(".npz"), overwrite=args.overwrite)
    print(f"wrote {out} and {npz}")
    return 0


# --------------------------------------------------------------------------------------------------------------
# rdam


def run_rdam(args: argparse.Namespace) -> int:
    """Execute ``analyze rdam`` (see :data:`_RDAM_DESCRIPTION`).

    Returns:
        0 on success (errors a user can fix raise ``CLIError`` or ``ValueError``: exit 2).
    """
    from blindsr.analysis.plots import plot_rdam_report, plot_rdam_report_blocks
    from blindsr.analysis.rdam import input_text, rdam_network, rdam_report
    from blindsr.analysis.synth import parse_degradation
    from blindsr.cli.main import CLIError
    from blindsr.data.images import read_image
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
    student = rdam_network(loaded.model, arch=loaded.arch, name=name)
    print(f"model: {name} ({loaded.arch}, x{loaded.scale}); {input_text(setting)}")
    report = rdam_report(
        student,
        ((path, read_image(path)) for path in args.inputs),
        model=name,
        scale=loaded.scale,
        setting=setting,
        seed=args.seed,
        device=device,
        total=len(args.inputs),
        progress=not args.quiet,
    )
    stems = [image.name for image in report.images]
    for i, image in enumerate(report.images):
        print(image.summary())
        if args.per_block:
            blocks_png = out.with_name(f"{out.stem}-{_safe(image.name, i, stems[: i + 1])}-blocks.png")
            plot_rdam_report_blocks(report, i, path=blocks_png)
            print(f"  per-block maps: {blocks_png}")
    plot_rdam_report(report, path=out)
    npz = report.save(out.with_suffix(".npz"), overwrite=args.overwrite)
    print(f"wrote {out} and {npz}")
    return 0


def _safe(stem: str, index: int, stems: list[str]) -> str:
    """`stem` as part of a file name; with the image's index when an earlier image in `stems` has the same stem."""
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
    return keep if stems.count(stem) == 1 else f"{keep}_{index}"


# --------------------------------------------------------------------------------------------------------------
# adaptation


def run_adaptation(args: argparse.Namespace) -> int:
    """Execute ``analyze adaptation`` (see :data:`_ADAPTATION_DESCRIPTION`).

    Returns:
        0 on success (errors a user can fix raise ``CLIError`` or ``ValueError``: exit 2).
    """
    from blindsr.analysis.adaptation import adaptation_report, load_mln, step_sizes
    from blindsr.analysis.plots import plot_adaptation_report
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
    bench = _bench(args.data_root, args.dataset, mlns[0].scale)
    for m in mlns:
        print(f"MLN {m.label}: x{m.scale}, {m.source}")
    report = adaptation_report(
        mlns,
        bench,
        preset,
        inner_lr=rates,
        max_images=args.max_images,
        crop=args.crop,
        device=device,
        progress=not args.quiet,
    )
    print(report.summary())
    plot_adaptation_report(report, path=out)
    json_path = report.save(out.with_suffix(".json"), overwrite=args.overwrite)
    csv_path = report.save_csv(out.with_suffix(".csv"), overwrite=args.overwrite)
    print(f"wrote {out}, {json_path} and {csv_path}")
    return 0


# --------------------------------------------------------------------------------------------------------------
# kernels


def run_kernels(args: argparse.Namespace) -> int:
    """Execute ``analyze kernels`` (see :data:`_KERNELS_DESCRIPTION`).

    Returns:
        0 on success (errors a user can fix raise ``CLIError`` or ``ValueError``: exit 2).
    """
    from blindsr.analysis.kernels import KERNEL_PROTOCOL, dmsr_network, kernel_report
    from blindsr.analysis.plots import plot_kernel_report
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
    print(f"model: {name} ({loaded.arch}, x{scale}); LR synthesised by the {KERNEL_PROTOCOL} protocol")
    report = kernel_report(
        net,
        bench,
        scale=scale,
        widths=args.widths,
        noise_levels=args.noise_levels,
        model=name,
        arch=loaded.arch,
        max_images=args.max_images,
        crop=args.crop,
        device=device,
        progress=not args.quiet,
    )
    print(report.summary())
    plot_kernel_report(report, path=out)
    json_path = report.save(out.with_suffix(".json"), overwrite=args.overwrite)
    csv_path = report.save_csv(out.with_suffix(".csv"), overwrite=args.overwrite)
    print(f"wrote {out}, {json_path} and {csv_path}")
    return 0
