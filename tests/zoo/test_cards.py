"""The shipped cards are short data, and docs/models.md holds each model's training record under its card name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from blindsr.cli.main import main
from blindsr.zoo import cards

MODELS_DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"
_ANCHOR = re.compile(r'^<a id="([^"]+)"></a>$', re.MULTILINE)


def _sections() -> dict[str, str]:
    """The text of each model's section of docs/models.md, keyed by its anchor (the card name)."""
    text = MODELS_DOC.read_text(encoding="utf-8")
    marks = list(_ANCHOR.finditer(text))
    return {
        m.group(1): text[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        for i, m in enumerate(marks)
    }


def test_every_shipped_card_has_its_section_in_docs_models() -> None:
    sections = _sections()
    names = [card.name for card in cards.MODEL_CARDS]
    assert list(sections) == names  # one section per card, in listing order, and none for a card that is gone
    for card in cards.MODEL_CARDS:
        section = sections[card.name]
        assert f"### {card.name}" in section, card.name
        assert f"`{card.weights}`" in section, card.name
        assert f"`{card.train_config}`" in section, card.name
        assert (Path(MODELS_DOC).parents[1] / card.train_config).is_file(), card.train_config
        if card.noise_free_variant:
            assert f"`{card.noise_free_variant}`" in section, card.name


def test_shipped_cards_are_short_data() -> None:
    assert len({card.license for card in cards.MODEL_CARDS}) == 1  # one licence, written once in cards.py
    for card in cards.MODEL_CARDS:
        assert len(card.trained) <= 40, card.name  # the record itself is in docs/models.md
        assert len(card.description) <= 130, card.name
        assert len(card.license) <= 40, card.name
        assert "\n" not in card.trained + card.description + card.paper + card.license


def test_models_table_fits_160_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SCALE", "PARAMS", "TRAINED", "LICENSE"]
    assert max(len(line) for line in lines) <= 160
    assert len(lines) == 1 + 2 * len(cards.MODEL_CARDS) + 1 + (not all(_available()))
    assert "docs/models.md" in lines[-1] and "blindsr models --json" in lines[-1]


def _available() -> list[bool]:
    from blindsr.zoo import list_models

    return [m["available"] for m in list_models()]
