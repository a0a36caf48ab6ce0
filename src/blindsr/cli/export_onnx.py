"""``blindsr export-onnx``: a zoo model or release file as an ONNX graph, checked against PyTorch with ONNX Runtime."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

_DESCRIPTION = """Export a model to ONNX: input lr (N, 3, H, W) float32 RGB in [0, 1], with dynamic batch, height and
width; outputs sr (N, 3, s*H, s*W) and, for DMSR, the degradation it estimated: kernel (N, k, k) and noise
(N, 3, H, W). The file's metadata_props record the model name, scale, architecture and its arguments, the blindsr
version and the sha256 of the source weights.

  blindsr export-onnx -m dmsr-x4 -o dmsr-x4.onnx
  blindsr export-onnx -m runs/export/model.safetensors -o model.onnx --opset 18

After exporting, the command runs the graph with ONNX Runtime (CPU) on inputs of other sizes than the traced one
(1x3x37x53 and 2x3x64x48), prints the max |ONNX - PyTorch| of every output and fails, without writing FILE, when one
is above --tolerance. The file is written atomically (temporary file, then rename). FILE is checked first: it may
not be the model file or a folder; an existing FILE is replaced only with --overwrite and only when it is an .onnx
file; only its own folder is created.

Exporter: the TorchScript-based one (torch's dynamo=False, "legacy") by default: on DMSR it exported 13-56x faster
than the torch.export-based one, with the same errors; --dynamo selects the latter (needs onnxscript). Needs the
optional dependencies: pip install -e '.[export]' (in the clone)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export-onnx`` sub-command to the main CLI.

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers()``.
    """
    p = sub.add_parser(
        "export-onnx",
        help="export a model to ONNX (dynamic sizes, metadata) and check it against PyTorch with ONNX Runtime",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-m", "--model", required=True, metavar="MODEL", help="a zoo name (see `blindsr models`) or a .safetensors file"
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument(
        "--opset", type=int, default=None, help="ONNX opset (default 17 with the legacy exporter, 18 with --dynamo)"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--legacy",
        dest="dynamo",
        action="store_false",
        help="the TorchScript-based exporter, torch.onnx.export(dynamo=False) (the default)",
    )
    which.add_argument(
        "--dynamo", dest="dynamo", action="store_true", help="the torch.export-based exporter (slower on DMSR)"
    )
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the ONNX Runtime parity check")
    p.add_argument(
        "--tolerance",
        type=float,
        default=None,
        metavar="T",
        help="largest max |ONNX - PyTorch| accepted per output (default 1e-4)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE (only an .onnx file)")
    p.set_defaults(func=run, dynamo=False)


def run(args: argparse.Namespace) -> int:
    """Execute ``export-onnx``.

    Args:
        args: parsed arguments with ``model``, ``output``, ``opset``, ``dynamo``, ``check`` and ``tolerance``.

    Returns:
        0 on success (errors a user can fix raise ``CLIError``, printed by the main CLI as one line).
    """
    from blindsr.cli.main import CLIError
    from blindsr.files import check_output_file
    from blindsr.zoo.onnx import (
        DEFAULT_TOLERANCE,
        OnnxDependencyError,
        OnnxExportError,
        OnnxParityError,
        export_model,
        require_onnx,
    )

    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise CLIError(f"--tolerance must be a positive number, got {args.tolerance}")
    inputs = [args.model] if Path(args.model).exists() else []
    args.output = check_output_file(args.output, inputs=inputs, overwrite=args.overwrite, suffixes=(".onnx",))
    try:
        require_onnx(runtime=args.check, dynamo=args.dynamo)
        result = export_model(
            args.model, args.output, opset=args.opset, dynamo=args.dynamo, check=args.check, tolerance=tolerance
        )
    except OnnxParityError as e:
        for r in e.results:
            print(f"  {r.text()}")
        raise CLIError(str(e)) from e
    except (OnnxDependencyError, OnnxExportError) as e:
        raise CLIError(str(e)) from e

    meta = result.metadata
    size_mib = result.path.stat().st_size / 2**20
    print(
        f"exported {meta.get('name', args.model)} ({meta.get('arch')}, x{meta.get('scale')}) with the "
        f"{result.exporter} exporter, opset {result.opset}, in {result.seconds:.1f} s: outputs "
        f"{', '.join(result.outputs)}; {size_mib:.1f} MiB"
    )
    if result.parity:
        import onnxruntime

        print(
            f"parity, max |ONNX Runtime {onnxruntime.__version__} - PyTorch| per output "
            f"(tolerance {result.tolerance:.0e}):"
        )
        for r in result.parity:
            print(f"  {r.text()}")
    else:
        print("parity check skipped (--no-check)")
    print(f"wrote {result.path}")
    return 0
