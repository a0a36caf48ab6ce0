"""The models that ship in the zoo: checksum, strict load, shapes, and a quality floor on a bundled sample."""

from __future__ import annotations

from pathlib import Path

import torch

import blindsr
from blindsr.data.images import read_image
from blindsr.degradations.presets import get_eval_preset
from blindsr.metrics import psnr
from blindsr.ops.crop import modcrop
from blindsr.ops.resize import bicubic_upscale
from blindsr.zoo.cards import MODEL_CARDS

SAMPLES = Path(blindsr.__file__).parent / "assets" / "samples"


def test_every_card_loads_strictly_with_its_checksum() -> None:
    for card in MODEL_CARDS:
        loaded = blindsr.load_model(card.name)
        assert loaded.scale == card.scale and loaded.card == card
        out = loaded.upscale(torch.rand(1, 3, 12, 10), card.scale)
        assert out.shape == (1, 3, 12 * card.scale, 10 * card.scale)


def test_dmsr_x4_lite_beats_bicubic_on_heavy_noise() -> None:
    loaded = blindsr.load_model("dmsr-x4")
    preset = get_eval_preset("dmsr-grid")
    hr = modcrop(read_image(SAMPLES / "astronaut.png"), 4)[None, :, :128, :128]
    index = [s.label for s in preset.settings_for(4)].index("k1.3-n50")
    lr = preset.degrade(hr, scale=4, setting_index=index, dataset="samples", stem="astronaut").lr
    ours = psnr(loaded.upscale(lr, 4).clamp(0, 1), hr, scale=4).item()
    bicubic = psnr(bicubic_upscale(lr, 4).clamp(0, 1), hr, scale=4).item()
    assert ours > bicubic + 1.0, (ours, bicubic)
