"""The model zoo: names → cards → weights files → loaded models (docs/design.md §5). Never downloads.

* :class:`ModelCard` (``card.py``): one released model; :data:`MODEL_CARDS` and :func:`get_card` (``cards.py``):
  the literal list and name lookup (``dmsr-x4`` ≡ the first ``dmsr-x4.*`` card; misses suggest close names).
* :func:`save_release` / :func:`load_model` (``weights.py``): self-describing safetensors (fp16, with ``arch``,
  ``arch_kwargs`` and ``scale`` in the metadata), so a file loads by path without a card; by name, the card's
  sha256 is checked first.
"""

from __future__ import annotations

from typing import Any

from blindsr.zoo import cards as _cards
from blindsr.zoo.card import ModelCard, ModelName, parse_model_name
from blindsr.zoo.cards import card_names, get_card
from blindsr.zoo.weights import (
    LoadedModel,
    WeightsError,
    list_models,
    load_model,
    parameter_counts,
    read_release_metadata,
    resolve_weights,
    save_release,
    sha256_file,
    weights_search_dirs,
)

__all__ = [
    "MODEL_CARDS",
    "LoadedModel",
    "ModelCard",
    "ModelName",
    "WeightsError",
    "card_names",
    "get_card",
    "list_models",
    "load_model",
    "parameter_counts",
    "parse_model_name",
    "read_release_metadata",
    "resolve_weights",
    "save_release",
    "sha256_file",
    "weights_search_dirs",
]


def __getattr__(name: str) -> Any:
    # MODEL_CARDS is read from cards.py on each access, so a monkeypatched list is what everyone sees
    if name == "MODEL_CARDS":
        return _cards.MODEL_CARDS
    raise AttributeError(f"module 'blindsr.zoo' has no attribute {name!r}")
