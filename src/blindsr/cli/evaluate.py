"""``blindsr eval``: score a model on a named evaluation preset, in the layout of the paper's table."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

_DESCRIPTION = """Evaluate a model on a named evaluation preset (see `blindsr protocols`).

For every dataset, scale and setting of the preset, the HR images are modcropped, degraded exactly as the preset
says (kernels, padding, bicubic borders, seeded noise, LR format), upscaled by the model and scored with the
preset's metric protocol. The table shows our numbers beside the paper's, with the difference.

Models: `bicubic` (MATLAB-exact, no weights), a zoo name (`blindsr models`), or a weights file written by
`blindsr export` (-m path/to/model.safetensors). For a learned model, bicubic is always scored too and printed as a
row of the table."""


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
        default="bicubic",
        help="bicubic (default), a zoo name, or a .safetensors file from `blindsr export`",
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
    device = torch.device(args.device)
    if args.model in BUILTIN_MODELS:
        model = BUILTIN_MODELS[args.model]
        name = args.model
    else:
        from blindsr.zoo import load_model

        loaded = load_model(args.model, device=device)
        model, name = loaded.upscale, loaded.card.name if loaded.card else Path(args.model).name
        scales = tuple(args.scales) if args.scales else tuple(s for s in preset.scales if s == loaded.scale)
        if loaded.scale not in scales or len(scales) != 1:
            raise CLIError(f"{name} upscales x{loaded.scale}; use --scales {loaded.scale}")
        args.scales = list(scales)
    t0 = time.perf_counter()

    def run_model(fn: Any, label: str) -> list[Any]:
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
        )

    cells = run_model(model, name)
    baseline = run_model(BUILTIN_MODELS["bicubic"], "bicubic") if name != "bicubic" else None
    elapsed = time.perf_counter() - t0
    print(format_table(cells, preset, compare=args.compare, baseline=baseline))
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
