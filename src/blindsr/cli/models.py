"""``blindsr models``: list the model cards (name, scale, parameters per component, training, licence).

The table keeps to short card fields, one row per model and one line of description each; ``--json`` prints every
field, and docs/models.md holds each model's training record.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

_DESCRIPTION = """List the trained models blindsr knows by name (the model cards): scale, parameter counts per
component, a one-line training summary, licence, and what each model is blind to. A name without a tag means the
first card listed for it (e.g. dmsr-x4 = dmsr-x4.lite). Nothing is downloaded: a card's weights file must be in
blindsr/zoo/weights/ or $BLINDSR_HOME/weights/. --json prints every card field (architecture, weights file, sha256,
training config, paper); each model's full training record and its measured tables are in the repository's
docs/models.md, one section per model, anchored by its name (docs/models.md#dmsr-x4.lite).

  blindsr models
  blindsr models --json

Any file written by `blindsr export` also loads by its path, without a card (blindsr eval -m FILE.safetensors)."""

_EMPTY = (
    "No trained models ship with blindsr yet.\n"
    "Evaluate a weights file written by `blindsr export` by its path: "
    "blindsr eval -m FILE.safetensors --protocol PRESET --data-root DATA"
)


_MORE = "Every card field: blindsr models --json. How each model was trained, and its measured tables: docs/models.md"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``models`` sub-command to the main CLI.

    Args:
        sub: the object returned by ``ArgumentParser.add_subparsers()``.
    """
    p = sub.add_parser(
        "models",
        help="list the trained models (cards), their parameters and training",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=run)


def _count(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1e3:.1f}k"
    return f"{n / 1e6:.2f}M"


def _params(params: dict[str, int]) -> str:
    return ", ".join(f"{name} {_count(n)}" for name, n in params.items())


def _table(models: list[dict[str, Any]]) -> str:
    header = ("NAME", "SCALE", "PARAMS", "TRAINED", "LICENSE")
    rows = []
    for m in models:
        name = m["name"] + (f" (= {', '.join(m['aliases'])})" if m["aliases"] else "")
        name += "" if m["available"] else " *"
        rows.append((name, f"x{m['scale']}", _params(m["params"]), m["trained"] or "-", m["license"] or "-"))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in (header, *rows)]
    for m in models:
        if m["description"]:
            lines.append(f"{m['name']}: {m['description']}")
    if not all(m["available"] for m in models):
        lines.append("* weights file not found locally (blindsr never downloads; see `blindsr models --help`)")
    lines.append(_MORE)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Execute ``models``.

    Args:
        args: parsed arguments with ``json``.

    Returns:
        0.
    """
    from blindsr.zoo import list_models

    models = list_models()
    if args.json:
        print(json.dumps(models, indent=2))
    elif not models:
        print(_EMPTY)
    else:
        print(_table(models))
    return 0
