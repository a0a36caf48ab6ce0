"""``blindsr export``: turn a finished training run into a self-describing release file and print its sha256."""

from __future__ import annotations

import argparse
from pathlib import Path

_DESCRIPTION = """Write one network of a finished run (RUN_DIR/final/) as a release file: fp16 safetensors whose
metadata names the architecture and its constructor arguments, so `blindsr eval -m FILE` and
blindsr.zoo.load_model(FILE) rebuild and load it strictly, without a card. The sha256 printed is what a model card
in blindsr/zoo/cards.py must carry.

  blindsr export runs/toy-x2/train -o toy-x2.safetensors
  blindsr export runs/dmsr-x4/train -o dmsr-x4.safetensors --card dmsr-x4.iso-noise

The run's config.yaml rebuilds the method, which says which networks it releases and how they are built; the
weights are RUN_DIR/final/ema.safetensors when present (the EMA average), else RUN_DIR/final/networks.safetensors.
The file's metadata also records the run folder, the sha256 of its config.yaml and the training step.

FILE is checked before anything is built: it may not be a folder or a file of the run (e.g. RUN_DIR/final/
networks.safetensors); an existing FILE is replaced only with --overwrite, and only when it is a .safetensors file;
only FILE's own folder is created."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command to the main CLI.

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers()``.
    """
    p = sub.add_parser(
        "export",
        help="write a finished run's network as a release file (fp16 safetensors + metadata); print its sha256",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a finished run folder (with final/)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .safetensors file to write")
    p.add_argument("--network", metavar="NAME", help="which network to export (default: the method's only one)")
    p.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="export the EMA weights (default: yes when RUN_DIR/final/ema.safetensors exists)",
    )
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (default: float16)")
    p.add_argument("--card", metavar="NAME", help="the model card name the file is for, e.g. dmsr-x4.iso-noise")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE (never one of the run's files)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``export``.

    Args:
        args: parsed arguments with ``run_dir``, ``output``, ``network``, ``ema``, ``fp32`` and ``card``.

    Returns:
        0 on success (errors a user can fix raise ``CLIError``, printed by the main CLI as one line).
    """
    from safetensors import safe_open

    from blindsr.cli.main import CLIError
    from blindsr.config import load_config
    from blindsr.engine.checkpoint import load_network_weights
    from blindsr.files import check_output_file
    from blindsr.methods import build_method
    from blindsr.zoo import save_release, sha256_file

    run_dir: Path = args.run_dir
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise CLIError(f"{run_dir} is not a run folder (no config.yaml)")
    # what export reads, and the run's other weights: never a target
    run_files = [config_path, *(p for p in (run_dir / "final").glob("*") if p.is_file())]
    run_files += [p for p in (run_dir / "checkpoints").rglob("*.safetensors")]
    args.output = check_output_file(args.output, inputs=run_files, overwrite=args.overwrite, suffixes=(".safetensors",))
    final = run_dir / "final"
    ema = args.ema if args.ema is not None else (final / "ema.safetensors").is_file()
    source = final / ("ema.safetensors" if ema else "networks.safetensors")
    if not source.is_file():
        what = "EMA weights (train with train.ema_decay > 0, or pass --no-ema)" if ema else "final weights"
        raise CLIError(f"{source} not found: the run has no {what}; has it finished? (resume it with blindsr train)")

    cfg = load_config(config_path)
    method = build_method(cfg)
    release = method.release()
    if args.network is not None:
        if args.network not in release:
            raise CLIError(f"unknown --network {args.network!r}; this method releases: {', '.join(release)}")
        network = args.network
    elif len(release) == 1:
        network = next(iter(release))
    else:
        raise CLIError(f"this method releases several networks; choose one with --network: {', '.join(release)}")
    arch, arch_kwargs = release[network]

    load_network_weights(method.networks, source)
    with safe_open(str(source), framework="pt") as f:
        step = (f.metadata() or {}).get("step")
    extra = {"run_dir": str(run_dir), "config_sha256": sha256_file(config_path), "network": network}
    extra["weights"] = "ema" if ema else "networks"
    if step is not None:
        extra["step"] = step
    sha = save_release(
        method.networks[network],
        args.output,
        arch=arch,
        arch_kwargs=arch_kwargs,
        scale=cfg.method.scale,
        card=args.card,
        extra_metadata=extra,
        half=not args.fp32,
    )
    size_kib = args.output.stat().st_size / 1024
    step_text = f", step {step}" if step is not None else ""
    print(
        f"exported network {network!r} ({arch}, x{cfg.method.scale}; {'EMA' if ema else 'raw'} weights{step_text}; "
        f"{'fp32' if args.fp32 else 'fp16'}, {size_kib:.1f} KiB) to {args.output}"
    )
    print(f"sha256 {sha}")
    return 0
