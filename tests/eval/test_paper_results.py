"""Tests for the published-numbers table (blindsr.eval.paper_results)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from blindsr.eval.paper_results import PAPER_RESULTS, PaperResult, paper_methods, paper_results

ISO_LABEL = re.compile(r"^k(0|[1-9]\d*)(\.\d*[1-9])?-n(0|[1-9]\d*)(\.\d*[1-9])?$")  # f"k{sigma:g}-n{noise:g}"
ANISO_LABEL = re.compile(r"^a[1-9]-n(0|[1-9]\d*)$")  # f"a{index}-n{noise:g}", index 1..9
LABEL_GRAMMAR = {
    "dmsr-grid": ISO_LABEL,
    "dmsr-ablation": ISO_LABEL,
    "dasr-iso": ISO_LABEL,
    "mrda-aniso": ANISO_LABEL,
    "gaussian8": re.compile(r"^mean$"),
    "mrda-ablation": re.compile(r"^mean$"),
}
DMSR_NOISY = ("k0.2-n15", "k1.3-n15", "k2.6-n15", "k0.2-n50", "k1.3-n50", "k2.6-n50")
DMSR_COLUMNS = [(d, s) for d in ("Set5", "Set14", "B100") for s in (2, 3, 4)]
G8_DATASETS = ("Set5", "Set14", "B100", "Urban100", "Manga109")


def one(preset: str, **kw: object) -> PaperResult:
    found = paper_results(preset, **kw)  # type: ignore[arg-type]
    assert len(found) == 1, (preset, kw, found)
    return found[0]


# --- spot values ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "dataset", "scale", "setting", "psnr", "ssim"),
    [
        ("DMSR", "Set5", 4, "k1.3-n50", 24.98, 0.7256),
        ("DMSR", "Set5", 2, "k0.2-n15", 32.79, 0.9009),
        ("DMSR", "B100", 4, "k2.6-n50", 23.27, 0.5422),
        ("DMSR", "Set14", 3, "k2.6-n15", 25.81, 0.6672),
        ("DMSR-nf", "Set5", 2, "k0.2-n0", 37.96, 0.9617),
        ("DMSR-nf", "B100", 4, "k0.2-n0", 27.65, 0.7398),
        ("IKC-vn", "Set5", 4, "k2.6-n50", 23.85, 0.6763),
        ("IKC-vn", "Set14", 2, "k1.3-n15", 28.15, 0.7654),
        ("SFM-vn", "B100", 2, "k1.3-n15", 27.45, 0.7260),
        ("ZSSR", "Set5", 2, "k0.2-n15", 26.60, 0.5972),
        ("ZSSR", "Set14", 4, "k0.2-n0", 27.16, 0.7451),
        ("IKC", "Set5", 3, "k0.2-n0", 34.02, 0.9261),
        ("IKC", "Set14", 4, "k2.6-n50", 11.72, 0.0608),
        ("SFM", "B100", 4, "k2.6-n50", 11.51, 0.0532),
        ("SFM", "Set5", 4, "k0.2-n0", 32.11, 0.8950),
    ],
)
def test_dmsr_table1_spot_values(method: str, dataset: str, scale: int, setting: str, psnr: float, ssim: float) -> None:
    r = one("dmsr-grid", method=method, dataset=dataset, scale=scale, setting=setting)
    assert (r.psnr, r.ssim) == (psnr, ssim)
    assert r.source.startswith("DMSR") and r.source.endswith("Table 1")


@pytest.mark.parametrize(
    ("method", "scale", "setting", "psnr", "ssim"),
    [
        ("DMSR w/o DR, DC", 4, "k1.3-n50", 24.87, 0.7194),
        ("DMSR w/o DC (KN)", 4, "k1.3-n50", 24.95, 0.7239),
        ("DMSR MNM-σ, w/o MBM", 2, "k2.6-n15", 28.61, 0.8119),
        ("DMSR 2 MBM", 3, "k1.3-n50", 25.97, 0.7545),
        ("DMSR 3 MBM", 3, "k1.3-n50", 25.95, 0.7537),
    ],
)
def test_dmsr_ablation_spot_values(method: str, scale: int, setting: str, psnr: float, ssim: float) -> None:
    r = one("dmsr-ablation", method=method, scale=scale, setting=setting)
    assert (r.dataset, r.psnr, r.ssim) == ("Set5", psnr, ssim)


def test_dmsr_ablation_full_rows_equal_table1() -> None:
    full = paper_results("dmsr-ablation", method="DMSR")
    assert {(r.scale, r.setting) for r in full} == {(4, "k1.3-n50"), (2, "k2.6-n15"), (3, "k1.3-n50")}
    for r in full:
        t1 = one("dmsr-grid", method="DMSR", dataset="Set5", scale=r.scale, setting=r.setting)
        assert (r.psnr, r.ssim) == (t1.psnr, t1.ssim)


@pytest.mark.parametrize(
    ("method", "dataset", "psnr", "ssim"),
    [
        ("MRDA_S", "Set5", 31.98, 0.8872),
        ("MRDA_S", "Manga109", 30.51, 0.9088),
        ("DASR", "Urban100", 25.36, 0.7506),
        ("Bicubic", "B100", 23.29, 0.5786),
        ("Bicubic+ZSSR", "Manga109", 23.53, 0.724),
        ("IKC", "Set14", 28.31, 0.7643),
        ("AdaTarget", "Set5", 31.58, 0.8814),
    ],
)
def test_gaussian8_spot_values(method: str, dataset: str, psnr: float, ssim: float) -> None:
    r = one("gaussian8", method=method, dataset=dataset)
    assert (r.scale, r.setting, r.psnr, r.ssim) == (4, "mean", psnr, ssim)
    assert r.source.endswith("Table II")


@pytest.mark.parametrize(
    ("method", "setting", "psnr"),
    [
        ("MRDA_S", "a2-n10", 25.81),
        ("MRDA_S", "a9-n20", 23.81),
        ("DASR", "a1-n0", 27.20),
        ("DnCNN+RCAN", "a3-n0", 24.6),
        ("DnCNN+IKC", "a4-n0", 27.33),
        ("DnCNN+DAN", "a8-n20", 23.37),
    ],
)
def test_mrda_aniso_spot_values(method: str, setting: str, psnr: float) -> None:
    r = one("mrda-aniso", method=method, setting=setting)
    assert (r.dataset, r.scale, r.psnr, r.ssim) == ("Set14", 4, psnr, None)


def test_mrda_aniso_notes_and_k6_duplicate() -> None:
    for r in paper_results("mrda-aniso"):
        approximate = "approximate kernels (Table III thumbnails)" in r.note
        assert approximate == (not r.setting.startswith("a2-")), r
    for method in paper_methods("mrda-aniso"):
        k2 = one("mrda-aniso", method=method, setting="a2-n0")
        k6 = one("mrda-aniso", method=method, setting="a6-n0")
        assert k2.psnr == k6.psnr


def test_mrda_ablation() -> None:
    assert paper_methods("mrda-ablation") == tuple(f"MRDA_T{i}" for i in (1, 2, 3)) + tuple(
        f"MRDA_S{i}" for i in range(1, 7)
    )
    assert one("mrda-ablation", method="MRDA_T2").psnr == 26.15
    assert one("mrda-ablation", method="MRDA_S5").psnr == 24.96
    s3 = one("mrda-ablation", method="MRDA_S3")
    assert s3.psnr == one("gaussian8", method="MRDA_S", dataset="Urban100").psnr == 25.90
    assert all(
        (r.dataset, r.scale, r.setting, r.ssim) == ("Urban100", 4, "mean", None) for r in paper_results("mrda-ablation")
    )
    assert one("mrda-ablation", method="MRDA_T2").note.startswith("oracle: MRDA_T adapts with the HR image")


def test_dasr_iso_teacher_table() -> None:
    fixed = paper_results("dasr-iso", method="MRDA_T w/ fixed Upscaler")
    adapted = paper_results("dasr-iso", method="MRDA_T w/o fixed Upscaler")
    assert [r.setting for r in fixed] == ["k0-n0", "k1.2-n0", "k2.4-n0", "k3.6-n0"]
    assert [r.psnr for r in fixed] == [26.48, 26.47, 26.25, 25.41]
    assert [r.psnr for r in adapted] == [26.44, 26.42, 26.09, 25.22]
    gains = [round(f.psnr - a.psnr, 2) for f, a in zip(fixed, adapted, strict=True)]  # type: ignore[operator]
    assert gains == [0.04, 0.05, 0.16, 0.19]
    for r in (*fixed, *adapted):
        assert (r.dataset, r.scale, r.ssim) == ("Urban100", 4, None)
        assert r.note == "oracle: MRDA_T adapts with the HR image"


# --- counts -----------------------------------------------------------------------------------------------------


def test_counts_per_preset() -> None:
    counts = Counter(r.preset for r in PAPER_RESULTS)
    assert counts == {
        "dmsr-grid": 360,
        "dmsr-ablation": 11,
        "gaussian8": 45,
        "mrda-aniso": 135,
        "mrda-ablation": 9,
        "dasr-iso": 8,
    }


def test_dmsr_grid_counts() -> None:
    dmsr = paper_results("dmsr-grid", method="DMSR")
    assert len(dmsr) == 9 * 6
    assert {(r.dataset, r.scale) for r in dmsr} == set(DMSR_COLUMNS)
    assert {r.setting for r in dmsr} == set(DMSR_NOISY)
    for method in ("IKC-vn", "SFM-vn"):
        assert len(paper_results("dmsr-grid", method=method)) == 54
    for method in ("ZSSR", "IKC", "SFM"):
        assert len(paper_results("dmsr-grid", method=method)) == 63
        assert len(paper_results("dmsr-grid", method=method, setting="k0.2-n0")) == 9
    nf = paper_results("dmsr-grid", method="DMSR-nf")
    assert len(nf) == 9 and {r.setting for r in nf} == {"k0.2-n0"}
    assert len(paper_results("dmsr-grid", setting="k0.2-n0")) == 4 * 9


def test_dmsr_best_psnr_in_every_noisy_cell() -> None:
    """The paper's claim, and a check that the interleaved flat list of Table 1 was aligned correctly."""
    for dataset, scale in DMSR_COLUMNS:
        for setting in DMSR_NOISY:
            cell = paper_results("dmsr-grid", dataset=dataset, scale=scale, setting=setting)
            assert len(cell) == 6
            best = max(cell, key=lambda r: r.psnr or 0.0)
            assert best.method == "DMSR", (dataset, scale, setting)
        cell = paper_results("dmsr-grid", dataset=dataset, scale=scale, setting="k0.2-n0")
        assert max(cell, key=lambda r: r.psnr or 0.0).method == "DMSR-nf"


def test_gaussian8_and_aniso_counts() -> None:
    assert paper_methods("gaussian8") == (
        "Bicubic",
        "RCAN",
        "SwinIR",
        "Bicubic+ZSSR",
        "IKC",
        "DAN",
        "AdaTarget",
        "DASR",
        "MRDA_S",
    )
    for method in paper_methods("gaussian8"):
        rows = paper_results("gaussian8", method=method)
        assert tuple(r.dataset for r in rows) == G8_DATASETS
    assert paper_methods("mrda-aniso") == ("DnCNN+RCAN", "DnCNN+DAN", "DnCNN+IKC", "DASR", "MRDA_S")
    for method in paper_methods("mrda-aniso"):
        settings = [r.setting for r in paper_results("mrda-aniso", method=method)]
        assert settings == [f"a{k}-n{n}" for n in (0, 10, 20) for k in range(1, 10)]


# --- global invariants ------------------------------------------------------------------------------------------


def test_psnr_plausible_range() -> None:
    """Every PSNR lies in 15-45 dB, except the 19 collapsed cells of DMSR Table 1: IKC and SFM, trained noise-free,
    on σn = 50 (11.5-15 dB, as printed in the paper)."""
    low = [r for r in PAPER_RESULTS if r.psnr is not None and r.psnr < 15.0]
    assert len(low) == 19
    for r in low:
        assert (r.preset, r.method, r.setting[-4:]) in {("dmsr-grid", "IKC", "-n50"), ("dmsr-grid", "SFM", "-n50")}, r
        assert r.psnr is not None and r.psnr >= 11.5, r
    for r in PAPER_RESULTS:
        assert r.psnr is not None, r
        assert r.psnr <= 45.0, r
        if r not in low:
            assert r.psnr >= 15.0, r


def test_ssim_range() -> None:
    for r in PAPER_RESULTS:
        assert r.ssim is None or 0.0 < r.ssim < 1.0, r
    with_ssim = {r.preset for r in PAPER_RESULTS if r.ssim is not None}
    assert with_ssim == {"dmsr-grid", "dmsr-ablation", "gaussian8"}


def test_no_duplicate_keys() -> None:
    keys = Counter((r.method, r.preset, r.dataset, r.scale, r.setting) for r in PAPER_RESULTS)
    assert [k for k, n in keys.items() if n > 1] == []


def test_labels_match_grammar() -> None:
    for r in PAPER_RESULTS:
        assert r.preset in LABEL_GRAMMAR, r
        assert LABEL_GRAMMAR[r.preset].match(r.setting), r
        assert r.dataset in G8_DATASETS, r
        assert r.scale in (2, 3, 4), r
        assert r.method and r.source, r


def test_iso_labels_round_trip_through_the_format() -> None:
    for r in PAPER_RESULTS:
        if LABEL_GRAMMAR[r.preset] is ISO_LABEL:
            sigma, noise = (float(x) for x in r.setting[1:].split("-n"))
            assert f"k{sigma:g}-n{noise:g}" == r.setting


def test_records_are_frozen() -> None:
    r = PAPER_RESULTS[0]
    with pytest.raises(AttributeError):
        r.psnr = 0.0  # type: ignore[misc]
    assert not hasattr(r, "__dict__")  # slots


# --- filter functions -------------------------------------------------------------------------------------------


def test_filters() -> None:
    assert paper_results("no-such-preset") == ()
    assert paper_methods("no-such-preset") == ()
    assert paper_results("dmsr-grid", method="MRDA_S") == ()
    set5_x4 = paper_results("dmsr-grid", dataset="Set5", scale=4)
    assert len(set5_x4) == 6 * 6 + 4
    assert all(r.dataset == "Set5" and r.scale == 4 for r in set5_x4)
    cell = paper_results("dmsr-grid", dataset="Set5", scale=4, setting="k1.3-n50")
    assert tuple(r.method for r in cell) == ("ZSSR", "IKC", "SFM", "IKC-vn", "SFM-vn", "DMSR")
    assert paper_results("gaussian8", scale=2) == ()
    assert len(paper_results("mrda-aniso", setting="a5-n20")) == 5
    assert all(isinstance(r, PaperResult) for r in paper_results("dasr-iso"))


def test_paper_methods_order() -> None:
    assert paper_methods("dmsr-grid") == ("ZSSR", "IKC", "SFM", "IKC-vn", "SFM-vn", "DMSR", "DMSR-nf")
    assert paper_methods("dasr-iso") == ("MRDA_T w/o fixed Upscaler", "MRDA_T w/ fixed Upscaler")
    assert paper_methods("dmsr-ablation")[:4] == ("DMSR w/o DR, DC", "DMSR w/o DC", "DMSR w/o DC (KN)", "DMSR")
