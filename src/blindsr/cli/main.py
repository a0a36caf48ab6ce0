"""``blindsr``: the command line. Wiring only: every sub-command lives in its own module with ``register``/``run``.

Errors a user can fix (missing folders, bad arguments, unreadable images) are printed as one line, without a
traceback, and exit with status 2. Set ``BLINDSR_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

import blindsr

# sub-command modules, in help order
_COMMANDS = (
    "blindsr.cli.degrade",
    "blindsr.cli.metrics",
    "blindsr.cli.protocols",
    "blindsr.cli.evaluate",
    "blindsr.cli.train",
    "blindsr.cli.upscale",
    "blindsr.cli.models",
    "blindsr.cli.export",
    "blindsr.cli.export_onnx",
    "blindsr.cli.analyze",
    "blindsr.cli.demo",
    "blindsr.cli.serve",
    "blindsr.cli.lpips_convert",
)

_EPILOG = """examples:
  blindsr protocols                                   list the evaluation presets and their grids
  blindsr degrade HR/ -o LR/ --scale 4 --kernel-sigma 1.3 --format npy
  blindsr degrade HR/ -o cells/ --preset dmsr-grid    every cell of a preset, with a JSON index
  blindsr metrics SR/ HR/ --scale 4 --json m.json     PSNR/SSIM on MATLAB Y, crop = scale
  blindsr eval -m bicubic --protocol gaussian8-x4 --data-root DATA
  blindsr train configs/toy/x2.yaml                   train (resumable: --resume RUN_DIR; DDP: torchrun)
  blindsr upscale photos/ -o results/ -m dmsr-x4      super-resolve files and folders (tiled, blind)
  blindsr analyze idr -m MODEL --data-root DATA -o idr.png   MRDA analysis plots (also: rdam, adaptation)
  blindsr demo -o demo_output

Run `blindsr COMMAND --help` for the options of a command."""


class CLIError(Exception):
    """An error the user can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blindsr",
        description="Blind image super-resolution toolkit: exact degradations, metrics and evaluation protocols "
        "(DMSR, MRDA).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"blindsr {blindsr.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def _innermost_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the (sub-)sub-command `args` chose (``blindsr analyze kernels``: that one), for its usage."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None) if action.dest != argparse.SUPPRESS else None
            if chosen in action.choices:
                return _innermost_parser(action.choices[chosen], args)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # `blindsr upscale x.png --fp16x`: the sub-command's usage, not the top-level one
        _innermost_parser(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CLIError, FileNotFoundError, NotADirectoryError, FileExistsError, ValueError, KeyError) as e:
        if os.environ.get("BLINDSR_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"blindsr {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # the system refused (a full disk, a read-only folder, no permission): its own words
        if os.environ.get("BLINDSR_DEBUG"):
            raise
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"blindsr {args.command}: error: {e.strerror or type(e).__name__}{where}", file=sys.stderr)
        return 2
    except Exception as e:  # image decoding errors etc. keep their one-line message
        user_facing = ("ImageReadError", "ImageWriteError", "NonFiniteLossError", "CheckpointError")
        if os.environ.get("BLINDSR_DEBUG") or type(e).__name__ not in user_facing:
            raise
        print(f"blindsr {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
