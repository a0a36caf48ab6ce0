"""The model zoo: one literal tuple of cards, and name lookup with aliases and suggestions.

Nine small CPU-trained models ship: ``dmsr-x{4,3,2}.lite`` with their noise-free variants ``dmsr-x{4,3,2}.nf-lite``,
``mrda-x4.iso-lite``, ``mrda-x4.aniso-noise-lite`` and ``mrda-x2.iso-lite``. A card is short data: what to build,
which file, what the model is blind to, and a one-line ``trained`` summary; each model's full training record (the
stages, steps, dates, machine) and where its measured tables are is its section of docs/models.md, anchored by the
card name (``docs/models.md#dmsr-x4.lite``).

A release appends a card per weights file; its ``sha256`` is the one ``blindsr export RUN_DIR -o FILE --card NAME``
prints, and the file goes into ``src/blindsr/zoo/weights/``. The first card listed for a base name is what the name
without a tag means (``dmsr-x4`` ≡ ``dmsr-x4.lite``), so list the default variant first.

Lookups read :data:`MODEL_CARDS` at call time, so tests can monkeypatch ``blindsr.zoo.cards.MODEL_CARDS``.
"""

from __future__ import annotations

import difflib

from blindsr.zoo.card import ModelCard

__all__ = ["MODEL_ALIASES", "MODEL_CARDS", "NO_MODELS_MESSAGE", "card_names", "get_card"]

# the small CPU-trainable widths the lite releases share (docs/training.md: the lite recipes)
_DMSR_LITE_X4 = {
    "scale": 4,
    "n_feats": 32,
    "n_groups": 2,
    "n_blocks": 4,
    "extractor_channels": 32,
    "mnm_kernel_size": 1,
    "n_mbm": 1,
    "noise_input": "map",
}
_DMSR_LITE_X3 = {**_DMSR_LITE_X4, "scale": 3}
_DMSR_LITE_X2 = {**_DMSR_LITE_X4, "scale": 2}
_MRDA_LITE_X4 = {
    "scale": 4,
    "n_feats": 32,
    "n_blocks": 6,
    "idr_dim": 128,
    "den_channels": 16,
    "kernel_size": 3,
    "modulation": "rdam",
    "kernel": "dynamic",
    "rdam_channels": 1,
    "rdam_input": "F",
    "rdam_kernel_size": 1,
    "da_reduction": 8,
}
_MRDA_LITE_X2 = {**_MRDA_LITE_X4, "scale": 2}

# Every shipped file carries the same licence: the code's, and research use for weights trained on research
# datasets (docs/models.md#licence names them).
_LITE_LICENSE = "code MIT; weights research use"

_DMSR_PAPER = "DMSR, arXiv 2207.00943"
_DMSR_LITE_PAPER = f"{_DMSR_PAPER} (architecture reduced: 32 features, 2 groups x 4 RCABs)"
_MRDA_PAPER = "MRDA, IEEE TIP 2023 / arXiv 2207.13963, MRDA_S"

# How well each DMSR model's blur estimate follows the true blur (ModelCard.kernel_estimate_r): Pearson's r of true
# and estimated kernel widths over Set5 x the default grid (6 widths x noise 0/15/50, 90 records), measured with the
# command below on the shipped weights, one CPU thread, 2026-12-03. All six are far below 0.5: the estimators have
# collapsed to about one width whatever the blur (docs/results.md, sections 7 and 10).
_KERNEL_R_SOURCE = "blindsr analyze kernels -m {name} --data-root ../shared/data --dataset Set5 -o k.png (2026-12-03)"

MODEL_CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        name="dmsr-x4.lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X4,
        scale=4,
        weights="dmsr-x4-lite.safetensors",
        sha256="163e8e0c102634ec1645e3f4fa4835913ccc8f7609e117c67bc97d58ac9a0ddf",
        description="DMSR x4, lite body: blind to 15x15 isotropic blur (sigma 0.2-3) and Gaussian noise (sigma 0-75)",
        train_config="configs/dmsr/lite_x4_ft.yaml",
        degradation="dmsr",
        paper=_DMSR_LITE_PAPER,
        license=_LITE_LICENSE,
        trained="CPU, bf16: 3,600 + 2,000 steps",
        noise_free_variant="dmsr-x4.nf-lite",
        kernel_estimate_r=0.106,
        kernel_estimate_source=_KERNEL_R_SOURCE.format(name="dmsr-x4.lite"),
    ),
    ModelCard(
        name="dmsr-x4.nf-lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X4,
        scale=4,
        weights="dmsr-x4-nf-lite.safetensors",
        sha256="a623258d865c33d7be5aec3693d20a795743c79b2f83fe385506e21519c7a812",
        description="DMSR-nf x4, noise-free fine-tune of dmsr-x4.lite: blind to 15x15 isotropic blur (sigma 0.2-3) "
        "without noise",
        train_config="configs/dmsr/lite_x4_nf.yaml",
        degradation="dmsr",
        paper=f"{_DMSR_PAPER}, DMSR-nf (Sec. 4.2; architecture reduced as dmsr-x4.lite)",
        license=_LITE_LICENSE,
        trained="dmsr-x4.lite + 2,500 nf steps",
        kernel_estimate_r=0.118,
        kernel_estimate_source=_KERNEL_R_SOURCE.format(name="dmsr-x4.nf-lite"),
    ),
    ModelCard(
        name="dmsr-x3.lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X3,
        scale=3,
        weights="dmsr-x3-lite.safetensors",
        sha256="f92615a5eafef663d08d4ed68bd1bd40c207224a47ea8f394a137c12454c14d6",
        description="DMSR x3, lite body: blind to 15x15 isotropic blur (sigma 0.2-3) and Gaussian noise (sigma 0-75)",
        train_config="configs/dmsr/lite_x3_ft.yaml",
        degradation="dmsr",
        paper=_DMSR_LITE_PAPER,
        license=_LITE_LICENSE,
        trained="CPU, bf16: x4 weights + 3 stages",
        noise_free_variant="dmsr-x3.nf-lite",
        kernel_estimate_r=0.267,
        kernel_estimate_source=_KERNEL_R_SOURCE.format(name="dmsr-x3.lite"),
    ),
    ModelCard(
        name="dmsr-x3.nf-lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X3,
        scale=3,
        weights="dmsr-x3-nf-lite.safetensors",
        sha256="a1ea5217faabf0752eee440bdff9ef76ad8d7cf5314749a674ac3c243d6d87e8",
        description="DMSR-nf x3, for clean inputs: 15x15 isotropic blur without noise, fine-tuned last on the sharper "
        "sigma 0.2-1.5",
        train_config="configs/dmsr/lite_x3_nfs.yaml",
        degradation="dmsr",
        paper=f"{_DMSR_PAPER}, DMSR-nf (Sec. 4.2; architecture reduced as dmsr-x3.lite; our sharper blur range in "
        "the last stage)",
        license=_LITE_LICENSE,
        trained="CPU, bf16: 3 noise-free stages",
        kernel_estimate_r=0.243,
        kernel_estimate_source=_KERNEL_R_SOURCE.format(name="dmsr-x3.nf-lite"),
    ),
    ModelCard(
        name="dmsr-x2.lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X2,
        scale=2,
        weights="dmsr-x2-lite.safetensors",
        sha256="b3038dcbfd9b1c2c4ff385b62a1dc3be851795da9d4c0663823b317eed695451",
        description="DMSR x2, lite body: blind to 15x15 isotropic blur (sigma 0.2-3) and Gaussian noise (sigma 0-75)",
        train_config="configs/dmsr/lite_x2_ft.yaml",
        degradation="dmsr",
        paper=_DMSR_LITE_PAPER,
        license=_LITE_LICENSE,
        trained="CPU, bf16: x4 weights + 3 stages",
        noise_free_variant="dmsr-x2.nf-lite",
        kernel_estimate_r=0.379,
        kernel_estimate_source=_KERNEL_R_SOURCE.format(name="dmsr-x2.lite"),
    ),
    ModelCard(
        name="dmsr-x2.nf-lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X2,
        scale=2,
        weights="dmsr-x2-nf-lite.safetensors",
        sha256="34cb61d854269b777a5562437fe8359fddcccb46c3fce2631fd081c7984a273c",
        description="DMSR-nf x2, for clean inputs: 15x15 isotropic blur without noise, fine-tuned last on the sharper "
        "sigma 0.2-1.5",
        train_config="configs/dmsr/lite_x2_nfs.yaml",
        degradation="dmsr",
        paper=f"{_DMSR_PAPER}, DMSR-nf (Sec. 4.2; architecture reduced as dmsr-x2.lite; our sharper blur range in "
        "the last stage)",
        license=_LITE_LICENSE,
        trained="CPU, bf16: 3 noise-free stages",
        kernel_estimate_r=0.177,
        kernel_estimate_source=_KERNEL_R_SOURCE.format(name="dmsr-x2.nf-lite"),
    ),
    ModelCard(
        name="mrda-x4.iso-lite",
        arch="mrda_s",
        arch_kwargs=_MRDA_LITE_X4,
        scale=4,
        weights="mrda-x4-iso-lite.safetensors",
        sha256="e6a6ee3a909cf7f2326cbc369f7eff570543f08600b6166fd4202354ed271f1d",
        description="MRDA student x4, lite widths: blind to 21x21 isotropic Gaussian blur (sigma 0.2-4), noise-free",
        train_config="configs/mrda/lite_iso_x4_student.yaml",
        degradation="mrda-iso-x4",
        paper=f"{_MRDA_PAPER} (widths reduced; Table II protocol: gaussian8)",
        license=_LITE_LICENSE,
        trained="CPU chain, bf16: about 2 h",
    ),
    ModelCard(
        name="mrda-x4.aniso-noise-lite",
        arch="mrda_s",
        arch_kwargs=_MRDA_LITE_X4,
        scale=4,
        weights="mrda-x4-aniso-noise-lite.safetensors",
        sha256="b660daf81ca8d5738395acb8e3c6bb086cefeaf97597f5b68edd2f35b9c6c9b4",
        description="MRDA student x4, lite widths: blind to 21x21 anisotropic Gaussian blur (lambda 0.2-4, any "
        "angle) and Gaussian noise (sigma 0-25)",
        train_config="configs/mrda/lite_aniso_x4_student.yaml",
        degradation="mrda-aniso-noise",
        paper=f"{_MRDA_PAPER} (widths reduced; Table III protocol: mrda-aniso)",
        license=_LITE_LICENSE,
        trained="CPU chain, bf16: about 1.5 h",
    ),
    ModelCard(
        name="mrda-x2.iso-lite",
        arch="mrda_s",
        arch_kwargs=_MRDA_LITE_X2,
        scale=2,
        weights="mrda-x2-iso-lite.safetensors",
        sha256="77a7dce98e64b31110af3f1f462094d96c0a80de3ff78a084ddf4d57f5dda807",
        description="MRDA student x2, lite widths: blind to 21x21 isotropic Gaussian blur (sigma 0.2-2), noise-free",
        train_config="configs/mrda/lite_iso_x2_student.yaml",
        degradation="mrda-iso-x2",
        paper=f"{_MRDA_PAPER} (widths reduced; gaussian8-x2 protocol; the paper trains x2 but prints no x2 table)",
        license=_LITE_LICENSE,
        trained="CPU chain, bf16: about 46 min",
    ),
)

# Extra spellings that do not follow the name grammar but that users (and the issue tracker) type. Each maps to a
# card name; `blindsr models` shows the alias beside its card.
MODEL_ALIASES: dict[str, str] = {"mrda-x4-aniso": "mrda-x4.aniso-noise-lite"}

NO_MODELS_MESSAGE = (
    "no trained models ship with blindsr yet; a weights file written by `blindsr export` loads by its path "
    "(e.g. `-m path/to/weights.safetensors`)"
)


def card_names(*, aliases: bool = False) -> list[str]:
    """The names of all cards, in listing order.

    Args:
        aliases: also include each base name (the name without its tag) once, after its first card.
    """
    names: list[str] = []
    for card in MODEL_CARDS:
        names.append(card.name)
        if aliases and card.base_name != card.name and card.base_name not in names:
            names.append(card.base_name)
        if aliases:
            names.extend(alias for alias, target in MODEL_ALIASES.items() if target == card.name)
    return names


def get_card(name: str) -> ModelCard:
    """The card for a model name; a name without a tag means the first card listed for that base name.

    Args:
        name: e.g. ``"dmsr-x4.nf"``, or ``"dmsr-x4"`` for the first ``dmsr-x4.*`` card.

    Returns:
        The card.

    Raises:
        KeyError: no such card; the message lists the closest names and points at ``blindsr models`` (or, with
            no cards at all, says so and how to load a weights file by path).
    """
    cards = MODEL_CARDS
    name = MODEL_ALIASES.get(name, name)
    for card in cards:
        if card.name == name:
            return card
    for card in cards:
        if card.base_name == name:
            return card
    if not cards:
        raise KeyError(f"unknown model {name!r}: {NO_MODELS_MESSAGE}")
    close = difflib.get_close_matches(name, card_names(aliases=True), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise KeyError(f"unknown model {name!r}{hint}; `blindsr models` lists the available models")
