"""The model zoo: one literal tuple of cards, and name lookup with aliases and suggestions.

Today nine small CPU-trained models ship (``dmsr-x4.lite``, ``dmsr-x3.lite``, ``dmsr-x2.lite`` and their
noise-free variants ``dmsr-x{4,3,2}.nf-lite``, ``mrda-x4.iso-lite``, ``mrda-x4.aniso-noise-lite``,
``mrda-x2.iso-lite``; see their
``trained`` fields). A release appends a card
per weights file; its ``sha256`` is the one ``blindsr export RUN_DIR -o FILE --card NAME`` prints, and the file goes
into ``src/blindsr/zoo/weights/``. The first card listed for a base name is what the name without a tag means
(``dmsr-x4`` ≡ ``dmsr-x4.iso-noise`` when that card comes first), so list the default variant first.

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

MODEL_CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        name="dmsr-x4.lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X4,
        scale=4,
        weights="dmsr-x4-lite.safetensors",
        sha256="163e8e0c102634ec1645e3f4fa4835913ccc8f7609e117c67bc97d58ac9a0ddf",
        description="DMSR x4, small CPU-trainable body (0.49 M parameters); blind to 15x15 isotropic blur "
        "(sigma 0.2-3) and Gaussian noise (sigma 0-75)",
        train_config="configs/dmsr/lite_x4_ft.yaml",
        degradation="dmsr",
        paper="DMSR, arXiv 2207.00943 (architecture reduced: 32 features, 2 groups x 4 RCABs)",
        license="code MIT; weights trained on T91, BSD200 and DIV2K-valid crops (research datasets): research use",
        trained="CPU lite recipe: lite_x4 (3,600 steps x batch 16, LR 32x32, bf16, 62 min on 2 CPU cores) then "
        "lite_x4_ft (1,000 steps, 20 % noise-free samples, kernel loss summed; 53 min on 2 shared cores), resumed to "
        "2,000 steps on 2026-11-23 (31 min, one thread); EMA weights; "
        "the paper trains 500,000 steps x 32 on DF2K. Still below bicubic on clean, sharp inputs, where its "
        "noise-free variant dmsr-x4.nf-lite is not (docs/results.md)",
        noise_free_variant="dmsr-x4.nf-lite",
    ),
    ModelCard(
        name="dmsr-x4.nf-lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X4,
        scale=4,
        weights="dmsr-x4-nf-lite.safetensors",
        sha256="a623258d865c33d7be5aec3693d20a795743c79b2f83fe385506e21519c7a812",
        description="DMSR-nf x4 (noise-free fine-tune of dmsr-x4.lite), small CPU-trainable body; blind to 15x15 "
        "isotropic blur (sigma 0.2-3) without noise. Scores the noise-free cells of dmsr-grid",
        train_config="configs/dmsr/lite_x4_nf.yaml",
        degradation="dmsr",
        paper="DMSR, arXiv 2207.00943, DMSR-nf (Sec. 4.2; architecture reduced as dmsr-x4.lite)",
        license="code MIT; weights trained on T91, BSD200 and DIV2K-valid crops (research datasets): research use",
        trained="dmsr-x4.lite fine-tuned with the noise fixed at 0 (all three losses), 2,500 steps x batch 16, LR "
        "32x32, bf16, on 2 CPU cores (1,000 steps, then extended to 2,500 with --resume); EMA weights; the paper "
        "fine-tunes 100,000 steps",
    ),
    ModelCard(
        name="dmsr-x3.lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X3,
        scale=3,
        weights="dmsr-x3-lite.safetensors",
        sha256="f92615a5eafef663d08d4ed68bd1bd40c207224a47ea8f394a137c12454c14d6",
        description="DMSR x3, small CPU-trainable body (0.50 M parameters); blind to 15x15 isotropic blur "
        "(sigma 0.2-3) and Gaussian noise (sigma 0-75)",
        train_config="configs/dmsr/lite_x3_ft.yaml",
        degradation="dmsr",
        paper="DMSR, arXiv 2207.00943 (architecture reduced: 32 features, 2 groups x 4 RCABs)",
        license="code MIT; weights trained on T91, BSD200 and DIV2K-valid crops (research datasets): research use",
        trained="CPU lite recipe, 2026-11-22/23, 2 shared CPU cores, bf16, batch 16 of 40x40 LR patches, 20 % "
        "noise-free samples: lite_x4's weights (all but the upsampler), lite_x3 (800 steps, 47 min), its extractor "
        "trained alone noise-free (lite_x3_nf_extractor, 2,500 steps x 32), then lite_x3_ft (800 joint steps, Adam "
        "1e-4 cosine, 24 min), resumed to 1,400 steps on 2026-11-23 (18 min, one thread); EMA weights; the paper "
        "trains 500,000 steps x 32 on DF2K. Below bicubic on clean, "
        "sharp inputs, where its noise-free variant dmsr-x3.nf-lite is not (docs/results.md)",
        noise_free_variant="dmsr-x3.nf-lite",
    ),
    ModelCard(
        name="dmsr-x3.nf-lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X3,
        scale=3,
        weights="dmsr-x3-nf-lite.safetensors",
        sha256="a1ea5217faabf0752eee440bdff9ef76ad8d7cf5314749a674ac3c243d6d87e8",
        description="DMSR-nf x3, small CPU-trainable body; for clean inputs: noise-free, fine-tuned on the sharper "
        "half of the blur range (sigma 0.2-1.5). Scores the noise-free cells of dmsr-grid",
        train_config="configs/dmsr/lite_x3_nfs.yaml",
        degradation="dmsr",
        paper="DMSR, arXiv 2207.00943, DMSR-nf (Sec. 4.2; architecture reduced as dmsr-x3.lite; our sharper blur "
        "range in the last stage)",
        license="code MIT; weights trained on T91, BSD200 and DIV2K-valid crops (research datasets): research use",
        trained="2026-11-22, 2 CPU cores, bf16, batch 16, noise fixed at 0: lite_x3's extractor trained alone 2,500 "
        "steps (lite_x3_nf_extractor), joint 3,400 steps with sigma_k U[0.2, 3] (lite_x3_nf), then 1,500 steps "
        "with sigma_k U[0.2, 1.5], Adam 2e-4 cosine (lite_x3_nfs); EMA weights; the paper fine-tunes 100,000 steps",
    ),
    ModelCard(
        name="dmsr-x2.lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X2,
        scale=2,
        weights="dmsr-x2-lite.safetensors",
        sha256="b3038dcbfd9b1c2c4ff385b62a1dc3be851795da9d4c0663823b317eed695451",
        description="DMSR x2, small CPU-trainable body (0.45 M parameters); blind to 15x15 isotropic blur "
        "(sigma 0.2-3) and Gaussian noise (sigma 0-75)",
        train_config="configs/dmsr/lite_x2_ft.yaml",
        degradation="dmsr",
        paper="DMSR, arXiv 2207.00943 (architecture reduced: 32 features, 2 groups x 4 RCABs)",
        license="code MIT; weights trained on T91, BSD200 and DIV2K-valid crops (research datasets): research use",
        trained="CPU lite recipe, 2026-11-22/23, 2 shared CPU cores, bf16, batch 16 of 48x48 LR patches, 20 % "
        "noise-free samples: lite_x4's weights (all but the upsampler), lite_x2 (1,000 steps, 45 min), its extractor "
        "trained alone noise-free (lite_x2_nf_extractor, 2,500 steps x 32), then lite_x2_ft (2,000 joint steps, Adam "
        "1e-4 cosine: 800, then extended to 1,400 and 2,000 with --resume; about 48 min); EMA weights; the paper "
        "trains 500,000 steps x 32 on DF2K. Below bicubic on clean, sharp inputs, where its noise-free variant "
        "dmsr-x2.nf-lite is not (docs/results.md)",
        noise_free_variant="dmsr-x2.nf-lite",
    ),
    ModelCard(
        name="dmsr-x2.nf-lite",
        arch="dmsr",
        arch_kwargs=_DMSR_LITE_X2,
        scale=2,
        weights="dmsr-x2-nf-lite.safetensors",
        sha256="34cb61d854269b777a5562437fe8359fddcccb46c3fce2631fd081c7984a273c",
        description="DMSR-nf x2, small CPU-trainable body; for clean inputs: noise-free, fine-tuned on the sharper "
        "half of the blur range (sigma 0.2-1.5). Scores the noise-free cells of dmsr-grid",
        train_config="configs/dmsr/lite_x2_nfs.yaml",
        degradation="dmsr",
        paper="DMSR, arXiv 2207.00943, DMSR-nf (Sec. 4.2; architecture reduced as dmsr-x2.lite; our sharper blur "
        "range in the last stage)",
        license="code MIT; weights trained on T91, BSD200 and DIV2K-valid crops (research datasets): research use",
        trained="2026-11-22/23, 2 CPU cores, bf16, batch 16, noise fixed at 0: lite_x2's extractor trained alone 2,500 "
        "steps (lite_x2_nf_extractor), joint 2,000 steps with sigma_k U[0.2, 3] (lite_x2_nf), then 4,400 steps "
        "with sigma_k U[0.2, 1.5], Adam 2e-4 cosine (lite_x2_nfs); EMA weights; the paper fine-tunes 100,000 steps",
    ),
    ModelCard(
        name="mrda-x4.iso-lite",
        arch="mrda_s",
        arch_kwargs=_MRDA_LITE_X4,
        scale=4,
        weights="mrda-x4-iso-lite.safetensors",
        sha256="e6a6ee3a909cf7f2326cbc369f7eff570543f08600b6166fd4202354ed271f1d",
        description="MRDA student x4, small CPU-trainable widths (RDAN 32 x 6 blocks, IDR 128); blind to 21x21 "
        "isotropic Gaussian blur (sigma 0.2-4), noise-free",
        train_config="configs/mrda/lite_iso_x4_student.yaml",
        degradation="mrda-iso-x4",
        paper="MRDA, IEEE TIP 2023 / arXiv 2207.13963, MRDA_S (widths reduced; Table II protocol: gaussian8)",
        license="code MIT; weights trained on T91, BSD200 and DIV2K-valid crops (research datasets): research use",
        trained="CPU lite chain, 2026-11-22/23, 1 CPU thread per stage, bf16, batch 16 of 32x32 LR patches: MLN "
        "bicubic pretraining 1,000 steps, MAML 500 (5 tasks x 5 first-order inner steps), teacher 1,200, student "
        "1,200 (200 KD-only) resumed to 2,400 (lite_iso_x4_student_long), then 1,600 more with Adam 1e-4 cosine "
        "(lite_iso_x4_student_ft); EMA weights; about 2 h in all; the paper trains each stage 500 epochs x 64 on DF2K",
    ),
    ModelCard(
        name="mrda-x4.aniso-noise-lite",
        arch="mrda_s",
        arch_kwargs=_MRDA_LITE_X4,
        scale=4,
        weights="mrda-x4-aniso-noise-lite.safetensors",
        sha256="b660daf81ca8d5738395acb8e3c6bb086cefeaf97597f5b68edd2f35b9c6c9b4",
        description="MRDA student x4, small CPU-trainable widths; blind to 21x21 anisotropic Gaussian blur "
        "(lambda 0.2-4, any angle) and Gaussian noise (sigma 0-25)",
        train_config="configs/mrda/lite_aniso_x4_student.yaml",
        degradation="mrda-aniso-noise",
        paper="MRDA, IEEE TIP 2023 / arXiv 2207.13963, MRDA_S (widths reduced; Table III protocol: mrda-aniso)",
        license="code MIT; weights trained on T91, BSD200 and DIV2K-valid crops (research datasets): research use",
        trained="CPU lite chain, 2026-11-22/23, 1 CPU thread per stage, bf16, batch 16 of 32x32 LR patches: the iso "
        "chain's bicubic MLN pretraining, then MAML 500 steps, teacher 1,200, student 1,200 (200 KD-only) on aniso + "
        "noise, then the student 1,600 more steps with Adam 1e-4 cosine (lite_aniso_x4_student_ft); EMA weights; "
        "about 1.5 h after the shared pretraining; the paper trains each stage 500 epochs x 64 on DF2K",
    ),
    ModelCard(
        name="mrda-x2.iso-lite",
        arch="mrda_s",
        arch_kwargs=_MRDA_LITE_X2,
        scale=2,
        weights="mrda-x2-iso-lite.safetensors",
        sha256="77a7dce98e64b31110af3f1f462094d96c0a80de3ff78a084ddf4d57f5dda807",
        description="MRDA student x2, small CPU-trainable widths (RDAN 32 x 6 blocks, IDR 128); blind to 21x21 "
        "isotropic Gaussian blur (sigma 0.2-2), noise-free",
        train_config="configs/mrda/lite_iso_x2_student.yaml",
        degradation="mrda-iso-x2",
        paper="MRDA, IEEE TIP 2023 / arXiv 2207.13963, MRDA_S (widths reduced; gaussian8-x2 protocol; the paper "
        "trains x2 but prints no x2 table)",
        license="code MIT; weights trained on T91, BSD200 and DIV2K-valid crops (research datasets): research use",
        trained="CPU lite chain, 2026-11-23, 1 CPU thread, bf16, batch 16 of 32x32 LR patches: MLN bicubic "
        "pretraining 1,000 steps, MAML 500 (5 tasks x 5 first-order inner steps), teacher 1,200, student 1,200 (200 "
        "KD-only), then the student 3,000 more steps with Adam 1e-4 cosine (lite_iso_x2_student_ft); EMA weights; "
        "about 46 min in all; the paper trains each stage 500 epochs x 64 on DF2K",
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
