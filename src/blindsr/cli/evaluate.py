"""``blindsr eval``: score a model on a named evaluation preset, in the layout of the paper's table."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

_DESCRIPTION = """Evaluate a model on a named evaluation preset (see `blindsr protocols`).

For every dataset, scale and setting of the preset, the HR images are modcropped, degraded exactly as the preset
says (kernels, padding, bicubic borders, seeded noise, LR format), upscaled by the model and scored with the
preset's metric protocol. The table shows our numbers beside the paper's, with the difference.

Models: `bicubic` (MATLAB-exact, no weights). Trained DMSR/MRDA models arrive with later releases."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model on a named preset (paper table layout)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-m", "--model", default="bicubic", help="model name (default: bicubic)")
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
    p.add_argument("--json", metavar="FILE", help="write one record per cell as JSON")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    import blindsr
    from blindsr.cli.main import CLIError
    from blindsr.degradations.presets import get_eval_preset
    from blindsr.eval.benchmark import BUILTIN_MODELS, evaluate
    from blindsr.eval.report import format_table

    preset = get_eval_preset(args.protocol)
    if args.model not in BUILTIN_MODELS:
        raise CLIError(f"unknown model {args.model!r}; available: {', '.join(BUILTIN_MODELS)}")
    t0 = time.perf_counter()
    cells = evaluate(
        BUILTIN_MODELS[args.model],
        preset,
        data_root=args.data_root,
        datasets=args.datasets,
        scales=tuple(args.scales) if args.scales else None,
        model_name=args.model,
        device=torch.device(args.device),
        progress=not args.quiet,
        max_images=args.max_images,
    )
    elapsed = time.perf_counter() - t0
    print(format_table(cells, preset, compare=args.compare))
    print(
        f"\n{sum(c.n_images for c in cells if c.setting != 'mean')} LR images scored in {elapsed:.1f} s "
        f"(blindsr {blindsr.__version__}, torch {torch.__version__}, {args.device})",
        file=sys.stderr,
    )
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        records = [c.record() for c in cells]
        path.write_text(json.dumps(records, indent=2) + "\n")
    return 0
