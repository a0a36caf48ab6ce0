"""``blindsr eval``: score a model on a named evaluation preset, in the layout of the paper's table."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from blindsr.eval.benchmark import OracleModel, OracleUpscaleFn
    from blindsr.methods.mrda import AdaptationOptions
    from blindsr.nets.mrda import MRDATeacher
    from blindsr.zoo import LoadedModel

_DESCRIPTION = """Evaluate a model on a named evaluation preset (see `blindsr protocols`).

For every dataset, scale and setting of the preset, the HR images are modcropped, degraded exactly as the preset
says (kernels, padding, bicubic borders, seeded noise, LR format), upscaled by the model and scored with the
preset's metric protocol. The table shows our numbers beside the paper's, with the difference.

Models: `bicubic` (MATLAB-exact, no weights), a zoo name (`blindsr models`), or a weights file written by
`blindsr export` (-m path/to/model.safetensors). For a learned model, bicubic is always scored too and printed as a
row of the table.

MRDA's teacher is an ORACLE, not blind SR: for every test image its meta-learned MLN is adapted afresh on that
image's (LR, HR) pair (MRDA_T3, the kernel ablation, is given the cell's true blur kernel instead). Evaluate it from
its training run, or from exported files:

  blindsr eval --teacher-run runs/mrda-x4/iso_x4_teacher --protocol gaussian8-x4 --data-root DATA
  blindsr eval -m teacher.safetensors --mln mln.safetensors --protocol gaussian8-x4 --data-root DATA

The table then starts with an ORACLE line, compares with the paper's oracle teachers (MRDA_T2 / MRDA_T3 of Table V)
and every JSON record carries "oracle": true.

DMSR's noise-free cell: the paper's Table 1 reports [0.2, 0] with DMSR-nf, DMSR fine-tuned with the noise fixed at
0. When the model's card names such a variant (e.g. dmsr-x4.lite -> dmsr-x4.nf-lite), that variant scores the
noise-free cells of dmsr-grid (and all of dmsr-nf); its rows say so. --nf-model picks another model, or `none`
to score every cell with -m."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model on a named preset (paper table layout)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-m",
        "--model",
        default=None,
        help="bicubic (default), a zoo name, or a .safetensors file from `blindsr export` (an MRDA teacher, arch "
        "mrda_t, is evaluated as an oracle: give its MLN with --mln)",
    )
    p.add_argument(
        "--protocol",
        "--preset",
        dest="protocol",
        required=True,
        help="evaluation preset, e.g. dmsr-grid, gaussian8, gaussian8-x4, mrda-aniso",
    )
    p.add_argument("--data-root", "--data_root", required=True, help="folder with <Set>/HR/ benchmark folders")
    p.add_argument("--datasets", nargs="+", help="datasets (default: the preset's datasets found in the data root)")
    p.add_argument("--scales", nargs="+", type=int, help="scales (default: all of the preset's)")
    p.add_argument(
        "--compare", nargs="*", help="paper methods to print beside ours (default: the preset's headline methods)"
    )
    p.add_argument(
        "--max-images",
        "--max_images",
        type=int,
        default=0,
        metavar="N",
        help="score only the first N images of each dataset (quick checks; default: all)",
    )
    p.add_argument(
        "--nf-model",
        "--nf_model",
        default="auto",
        metavar="MODEL",
        help="the model for the DMSR noise-free cells (the paper's DMSR-nf row): auto (default: the card's "
        "noise-free variant, if any), none (use -m), a zoo name or a .safetensors file",
    )
    p.add_argument(
        "--json",
        metavar="FILE",
        help="write one record per cell as JSON (checked before the run; an existing file needs --overwrite)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument(
        "--device",
        default="auto",
        help="auto (default: cuda, else mps, else cpu; as `blindsr upscale`), cpu, cuda, cuda:N or mps",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    oracle = p.add_argument_group("MRDA teacher (oracle evaluation: it uses the HR image or the true kernel)")
    oracle.add_argument(
        "--teacher-run",
        "--teacher_run",
        type=Path,
        metavar="RUN_DIR",
        help="a finished mrda_teacher stage folder: its final weights, its MLN (the stage's init entry, i.e. the "
        "meta stage's final weights) and its adaptation options; instead of -m",
    )
    oracle.add_argument(
        "--mln",
        metavar="MLN",
        help="the teacher's meta-learned MLN (a .safetensors file of arch mrda_mln, or a zoo name), for -m TEACHER",
    )
    oracle.add_argument(
        "--inner-steps",
        "--inner_steps",
        type=int,
        metavar="N",
        help="SGD steps adapting the MLN on each image (default: the run's config; with -m the paper's 5)",
    )
    oracle.add_argument(
        "--inner-lr",
        "--inner_lr",
        type=float,
        nargs="+",
        metavar="ALPHA",
        help="their step size, or one per step (default: the run's config; with -m the paper's 1e-2)",
    )
    p.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class _Teacher:
    """An MRDA teacher ready for oracle evaluation."""

    model: OracleModel
    name: str
    scale: int
    idr_source: str
    kernel_size: int  # the side of the true kernels MRDA_T3 reads (0: the kernel is not used)


def _adaptation_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.inner_steps is not None:
        out["inner_steps"] = args.inner_steps
    if args.inner_lr is not None:
        out["inner_lr"] = args.inner_lr[0] if len(args.inner_lr) == 1 else tuple(args.inner_lr)
    return out


def _oracle(teacher: MRDATeacher, upscale: OracleUpscaleFn, options: AdaptationOptions | None, name: str) -> _Teacher:
    """Wrap a teacher's oracle function, saying what it is given (`options`: its adaptation; None = the paper's)."""
    from blindsr.eval.benchmark import OracleModel
    from blindsr.methods.mrda import AdaptationOptions

    if teacher.idr_source == "kernel":
        uses = "the true blur kernel of every cell (MRDA_T3: 5 FC layers on it instead of DEN_T)"
    else:
        o = options or AdaptationOptions()
        rates = o.step_sizes()
        lr_text = f"{rates[0]:g}" if len(set(rates)) == 1 else "/".join(f"{r:g}" for r in rates)
        what = "Upscaler included" if o.adapt_upscaler else "Upscaler fixed"
        uses = (
            f"the HR image of every test image (MRDA_T: its MLN adapted afresh on each (LR, HR) pair, "
            f"{o.inner_steps} SGD steps of {lr_text}, {what})"
        )
    k = teacher.blur_encoder.blur_kernel_size if teacher.blur_encoder is not None else 0
    return _Teacher(OracleModel(upscale=upscale, uses=uses), name, int(teacher.scale), teacher.idr_source, k)


def _teacher_from_run(args: argparse.Namespace, device: torch.device) -> _Teacher:
    """``--teacher-run``: the stage's config rebuilds the method; MLN from its init entries, teacher from final/."""
    from blindsr.cli.main import CLIError
    from blindsr.config import load_config
    from blindsr.engine.checkpoint import load_network_weights
    from blindsr.engine.loop import _init_networks
    from blindsr.methods import build_method
    from blindsr.methods.mrda import MRDATeacherMethod
    from blindsr.nets.mrda import MRDATeacher

    run_dir: Path = args.teacher_run
    if not (run_dir / "config.yaml").is_file():
        raise CLIError(f"{run_dir} is not a run folder (no config.yaml)")
    cfg = load_config(run_dir / "config.yaml")
    if cfg.method.name != "mrda_teacher":
        raise CLIError(f"{run_dir} is a {cfg.method.name} run; --teacher-run takes an mrda_teacher stage")
    method = build_method(cfg)
    assert isinstance(method, MRDATeacherMethod)
    final = run_dir / "final"
    source = final / "ema.safetensors"
    if not source.is_file():
        source = final / "networks.safetensors"
    if not source.is_file():
        raise CLIError(f"{source} not found: has the teacher run finished? (resume it with blindsr train)")
    # the frozen MLN as in training (the meta stage's final weights, by the stage's `init:` entry), then the run's
    # own weights (with legacy_persistent_mln they include the drifted MLN, which then wins)
    _init_networks(method, tuple(i for i in cfg.init if i.network not in method.networks), run_dir)
    load_network_weights(method.networks, source)
    teacher = method.networks["teacher"].to(device).eval()
    assert isinstance(teacher, MRDATeacher)
    if method.options.idr_source == "mln":
        method.mln.to(device).eval()
    elif args.inner_steps is not None or args.inner_lr is not None:
        raise CLIError("--inner-steps / --inner-lr adapt an MLN; this teacher (idr_source: kernel) has none")
    options = replace(method.options, **_adaptation_overrides(args))
    try:
        upscale = method.oracle({"teacher": teacher}, options=options)
    except RuntimeError as e:  # an MLN that no init entry filled: refuse to adapt random weights
        raise CLIError(f"{run_dir}: {e}") from e
    return _oracle(teacher, upscale, options, f"{run_dir.parent.name}/{run_dir.name}")


def _teacher_from_files(args: argparse.Namespace, loaded: LoadedModel, device: torch.device) -> _Teacher:
    """``-m TEACHER --mln MLN``: released files (or zoo names); the paper's adaptation unless overridden."""
    from blindsr.cli.main import CLIError
    from blindsr.methods.mrda import AdaptationOptions, teacher_oracle
    from blindsr.nets.mrda import MetaLearningNetwork, MRDATeacher
    from blindsr.zoo import load_model

    name = loaded.card.name if loaded.card else Path(args.model).name
    teacher = loaded.model
    assert isinstance(teacher, MRDATeacher)
    if teacher.idr_source == "kernel":
        if args.mln is not None or args.inner_steps is not None or args.inner_lr is not None:
            raise CLIError(f"{name} is MRDA_T3 (idr_source: kernel): it uses no MLN; drop --mln / --inner-*")
        return _oracle(teacher, teacher_oracle(teacher, None), None, name)
    if args.mln is None:
        raise CLIError(
            f"{name} is an MRDA teacher: it adapts its meta-learned MLN with the HR image of each test image; give "
            "the MLN with --mln (`blindsr export` of the meta stage), or use --teacher-run RUN_DIR"
        )
    mln = load_model(args.mln, device=device)
    if mln.arch != "mrda_mln" or not isinstance(mln.model, MetaLearningNetwork):
        raise CLIError(f"--mln {args.mln} holds {mln.arch}, not an MLN (mrda_mln)")
    options = AdaptationOptions(**_adaptation_overrides(args))
    return _oracle(teacher, teacher_oracle(teacher, mln.model, options), options, name)


def _noise_free_labels(preset: Any, scales: tuple[int, ...]) -> set[str]:
    """The labels of the cells the paper scores with DMSR-nf: the noise-free settings of DMSR Table 1 presets."""
    if "DMSR Table 1" not in preset.paper_tables:
        return set()
    return {st.label for s in scales for st in preset.settings_for(s) if st.noise == 0}


def _noise_free_model(
    args: argparse.Namespace, card_name: str | None, scale: int | None, device: torch.device
) -> tuple[Any, str]:
    """(upscale function, name) of the model for the noise-free cells, or (None, "") to use -m everywhere."""
    from blindsr.cli.main import CLIError

    choice = args.nf_model
    if choice == "none":
        return None, ""
    if choice == "auto":
        if card_name is None:
            return None, ""
        from blindsr.zoo import get_card

        choice = get_card(card_name).noise_free_variant
        if not choice:
            return None, ""
    elif scale is None:
        raise CLIError("--nf-model goes with a learned -m MODEL (the DMSR model whose noise-free cells it scores)")
    from blindsr.zoo import load_model

    loaded = load_model(choice, device=device)
    if loaded.scale != scale:
        raise CLIError(f"--nf-model {choice} upscales x{loaded.scale}, but -m upscales x{scale}")
    return loaded.upscale, loaded.card.name if loaded.card else Path(choice).name


def run(args: argparse.Namespace) -> int:
    import torch

    import blindsr
    from blindsr.cli.main import CLIError
    from blindsr.degradations.presets import get_eval_preset
    from blindsr.eval.benchmark import BUILTIN_MODELS, evaluate
    from blindsr.eval.report import format_table

    preset = get_eval_preset(args.protocol)
    report = None
    if args.json:
        from blindsr.files import check_output_file

        report = check_output_file(args.json, overwrite=args.overwrite, suffixes=(".json",), flag="--json")
    from blindsr.inference.upscaler import resolve_device

    device = resolve_device(args.device)
    teacher: _Teacher | None = None
    if args.teacher_run is not None and args.model is not None:
        raise CLIError("give either -m MODEL or --teacher-run RUN_DIR, not both")
    if args.teacher_run is not None and args.mln is not None:
        raise CLIError("--mln goes with -m TEACHER; --teacher-run finds the MLN through the run's init entries")
    model_arg = args.model if args.model is not None else "bicubic"
    model: Any
    scale: int | None = None  # a learned model's only scale
    card_name: str | None = None  # the zoo card of -m, if it is one
    if args.teacher_run is not None:
        teacher = _teacher_from_run(args, device)
    elif model_arg in BUILTIN_MODELS:
        model, name = BUILTIN_MODELS[model_arg], model_arg
    else:
        from blindsr.zoo import load_model

        loaded = load_model(model_arg, device=device)
        if loaded.arch == "mrda_t":
            teacher = _teacher_from_files(args, loaded, device)
        else:
            model, name = loaded.upscale, loaded.card.name if loaded.card else Path(model_arg).name
            scale = loaded.scale
            card_name = loaded.card.name if loaded.card else None
    if teacher is not None:
        model, name, scale = teacher.model, teacher.name, teacher.scale
        if teacher.kernel_size and teacher.kernel_size != preset.kernel_size:
            raise CLIError(
                f"{name} reads {teacher.kernel_size}x{teacher.kernel_size} kernels; preset {preset.name} has "
                f"{preset.kernel_size}x{preset.kernel_size} ones"
            )
    elif args.mln is not None or args.inner_steps is not None or args.inner_lr is not None:
        raise CLIError("--mln / --inner-steps / --inner-lr are for an MRDA teacher (arch mrda_t, or --teacher-run)")
    if scale is not None:
        scales = tuple(args.scales) if args.scales else tuple(s for s in preset.scales if s == scale)
        if scale not in scales or len(scales) != 1:
            raise CLIError(f"{name} upscales x{scale}; use --scales {scale}")
        args.scales = list(scales)
    t0 = time.perf_counter()

    def run_model(fn: Any, label: str, settings: set[str] | None = None) -> list[Any]:
        return evaluate(
            fn,
            preset,
            data_root=args.data_root,
            datasets=args.datasets,
            scales=tuple(args.scales) if args.scales else None,
            model_name=label,
            device=device,
            progress=not args.quiet,
            max_images=args.max_images,
            settings=settings,
        )

    nf_fn, nf_name = _noise_free_model(args, card_name, scale, device)
    nf_labels = _noise_free_labels(preset, tuple(args.scales) if args.scales else preset.scales) if nf_fn else set()
    if nf_fn is not None and nf_labels:
        everything = {st.label for s in (args.scales or preset.scales) for st in preset.settings_for(s)}
        cells = run_model(model, name, everything - nf_labels) if everything - nf_labels else []
        cells += run_model(nf_fn, nf_name, nf_labels)
    else:
        cells = run_model(model, name)
    baseline = run_model(BUILTIN_MODELS["bicubic"], "bicubic") if name != "bicubic" else None
    elapsed = time.perf_counter() - t0
    delta_against = "MRDA_T3" if teacher is not None and teacher.idr_source == "kernel" else None
    print(format_table(cells, preset, compare=args.compare, baseline=baseline, delta_against=delta_against))
    print(
        f"\n{sum(c.n_images for c in cells if c.setting != 'mean')} LR images scored in {elapsed:.1f} s "
        f"(blindsr {blindsr.__version__}, torch {torch.__version__}, {device})",
        file=sys.stderr,
    )
    if report is not None:
        from blindsr.files import atomic_write_json

        atomic_write_json(report, [c.record() for c in cells])
    return 0
