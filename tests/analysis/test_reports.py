"""The result objects of blindsr.analysis (IDR, RDAM, adaptation, kernel reports): what they compute, their text, and
their ``.save``: a round trip of every field, atomic writes, and no overwriting unless asked. No matplotlib needed,
except in the one test that draws the figures (skipped without it)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from blindsr.analysis.adaptation import AdaptationReport, LoadedMLN, adaptation_report, run_adaptation
from blindsr.analysis.idr import IDRReport, analyze_idr, center_crop, collect_idr, idr_report
from blindsr.analysis.kernels import KernelReport, analyze_kernels, kernel_report
from blindsr.analysis.output import check_target, write_csv, write_json, write_npz
from blindsr.analysis.rdam import RDAMReport, collect_rdam_maps, input_text, rdam_report
from blindsr.analysis.synth import degradation_set, parse_degradation, synthesize_lr
from blindsr.data.benchmark import BenchmarkSet
from blindsr.data.images import write_image
from blindsr.degradations import get_eval_preset
from blindsr.files import OutputError
from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.mrda import MetaLearningNetwork, MRDAStudent, RDANOptions
from blindsr.ops.crop import modcrop


@pytest.fixture
def bench(tmp_path: Path) -> BenchmarkSet:
    """A fake Set5 of three random RGB PNGs (one 42x41, to exercise the modcrop)."""
    g = torch.Generator().manual_seed(0)
    for i, (h, w) in enumerate([(32, 32), (32, 32), (42, 41)]):
        write_image(tmp_path / "data" / "Set5" / "HR" / f"im{i}.png", torch.rand(3, h, w, generator=g))
    return BenchmarkSet(root=tmp_path / "data", name="Set5", scale=2)


def _student() -> MRDAStudent:
    torch.manual_seed(0)
    options = RDANOptions(n_feats=8, n_blocks=2, idr_dim=16)
    return MRDAStudent(scale=2, rdan_options=options, den_channels=4).eval()


def _refuses_then_overwrites(save: Callable[..., Path], path: Path) -> None:
    """`save(path)` again is refused (the file is kept byte for byte); with overwrite=True it writes."""
    before = path.read_bytes()
    with pytest.raises(OutputError, match="exists; pass overwrite=True to replace it"):
        save(path)
    assert path.read_bytes() == before
    assert save(path, overwrite=True) == path
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []  # no temporary file left


# ------------------------------------------------------------------------------------------------------------------
# the writers


def test_writers_refuse_existing_files_and_folders(tmp_path: Path) -> None:
    assert check_target(tmp_path / "new.json", overwrite=False) == tmp_path / "new.json"
    with pytest.raises(OutputError, match="is a folder"):
        check_target(tmp_path, overwrite=True)
    target = write_json(tmp_path / "a.json", {"x": float("nan"), "y": [1, 2]})
    assert json.loads(target.read_text()) == {"x": None, "y": [1, 2]}
    with pytest.raises(OutputError, match="exists"):
        write_json(target, {})
    write_csv(tmp_path / "a.csv", [["step", "m"], [0, "1.5"]])
    assert list(csv.reader((tmp_path / "a.csv").open())) == [["step", "m"], ["0", "1.5"]]
    write_npz(tmp_path / "a.npz", {"b": np.arange(3), "a": np.array("text")})
    data = np.load(tmp_path / "a.npz")
    assert list(data.keys()) == ["b", "a"] and str(data["a"]) == "text"
    with pytest.raises(OutputError, match="exists"):
        write_npz(tmp_path / "a.npz", {})
    assert write_csv(tmp_path / "a.csv", [["new"]], overwrite=True).read_text().strip() == "new"
    with pytest.raises(OutputError, match="does not exist"):
        write_json(tmp_path / "no" / "such" / "x.json", {})  # only the file's own folder is created


# ------------------------------------------------------------------------------------------------------------------
# IDR


def test_idr_report_is_collect_then_analyze(bench: BenchmarkSet) -> None:
    student = _student()
    settings = degradation_set(kind="noise", scale=2, noise_levels=(0, 20))
    report = idr_report(
        student, bench, settings, scale=2, kind="noise", model="m", seed=3, max_images=2, crop=24, n_iter=40, k=1
    )
    assert isinstance(report, IDRReport) and report.n_images == 2 and report.n_samples == 4
    images = [(bench[i].name, bench[i].hr) for i in range(2)]
    samples = collect_idr(student, images, settings, scale=2, seed=3, dataset="Set5", crop=24)
    direct = analyze_idr(samples, seed=3, n_iter=40, k=1)
    assert np.array_equal(report.analysis.samples.idr, samples.idr)
    assert np.array_equal(report.analysis.tsne.embedding, direct.tsne.embedding)
    assert report.analysis.separability == direct.separability
    lines = report.summary().splitlines()
    assert lines[0] == "IDR: 4 samples (2 images of Set5 x 2 degradations)"
    assert lines[1] == f"separability in IDR space: {direct.separability.summary()}"


def test_idr_report_errors(bench: BenchmarkSet) -> None:
    settings = degradation_set(kind="noise", scale=2, noise_levels=(0, 20))
    with pytest.raises(ValueError, match=r"only 2 samples: use more images or degradations \(t-SNE needs at least 4\)"):
        idr_report(_student(), bench, settings, scale=2, kind="noise", model="m", max_images=1)
    with pytest.raises(ValueError, match="modcropped to x2, not to the scale x4"):
        idr_report(_student(), bench, settings, scale=4, kind="noise", model="m")


def test_idr_report_save_round_trip(bench: BenchmarkSet, tmp_path: Path) -> None:
    settings = degradation_set(kind="iso", scale=2, widths=(0.8, 1.6))
    report = idr_report(_student(), bench, settings, scale=2, kind="iso", model="m", arch="mrda_s", seed=7, n_iter=30)
    path = report.save(tmp_path / "out" / "idr.npz")
    data = np.load(path)
    assert list(data.keys()) == [
        *("idr", "labels", "label_names", "images", "embedding", "tsne_seed", "tsne_perplexity", "tsne_iterations"),
        *("tsne_kl", "silhouette", "knn_accuracy", "knn_k", "seed", "model", "arch", "scale", "dataset", "kind"),
        *("crop", "settings"),
    ]
    a = report.analysis
    assert np.array_equal(data["idr"], a.samples.idr) and data["idr"].dtype == np.float32
    assert np.array_equal(data["labels"], a.samples.labels) and np.array_equal(data["embedding"], a.tsne.embedding)
    assert data["label_names"].tolist() == a.samples.label_names and data["images"].tolist() == a.samples.images
    assert float(data["tsne_kl"]) == a.tsne.kl_divergence and float(data["silhouette"]) == a.separability.silhouette
    assert int(data["knn_k"]) == a.separability.k and int(data["tsne_iterations"]) == 30
    assert (int(data["seed"]), str(data["model"]), str(data["arch"]), int(data["scale"])) == (7, "m", "mrda_s", 2)
    assert (str(data["dataset"]), str(data["kind"]), int(data["crop"])) == ("Set5", "iso", 0)
    assert json.loads(str(data["settings"])) == a.samples.settings
    _refuses_then_overwrites(report.save, path)


# ------------------------------------------------------------------------------------------------------------------
# RDAM


def test_rdam_report_of_hr_inputs(tmp_path: Path) -> None:
    student = _student()
    g = torch.Generator().manual_seed(2)
    images = [("in/a.png", torch.rand(3, 33, 40, generator=g)), ("b.png", torch.rand(3, 24, 24, generator=g))]
    setting = parse_degradation("iso:1.2", noise=5)
    report = rdam_report(student, iter(images), model="m", scale=2, setting=setting, seed=4)
    assert isinstance(report, RDAMReport) and [i.name for i in report.images] == ["a", "b"]
    assert report.what == input_text(setting) == "LR synthesised with σ 1.2, σn 5"
    hr = modcrop(images[0][1], 2)
    lr = synthesize_lr(hr, [setting], scale=2, seed=4, key=("a",))
    maps = collect_rdam_maps(student, lr)
    first = report.images[0]
    assert np.array_equal(first.mean, maps.mean[0].numpy()) and first.mean.shape == (16, 20)
    assert np.array_equal(first.per_conv, maps.per_conv[:, 0].numpy()) and first.per_block.shape == (2, 16, 20)
    assert np.array_equal(first.lr, lr[0].permute(1, 2, 0).numpy()) and first.shown.shape == (32, 40, 3)
    assert first.shown_title == "HR" and report.conv_names == maps.names
    m = first.mean
    assert report.summary().splitlines()[0] == (
        f"a: LR 20x16, M mean {m.mean():.3f} (min {m.min():.3f}, max {m.max():.3f}, std {m.std():.3f}) over 4 RDA convs"
    )


def test_rdam_report_of_lr_inputs_and_errors() -> None:
    student = _student()
    report = rdam_report(student, [("x/lr.png", torch.rand(3, 12, 10))], model="m", scale=2)
    assert report.what == "LR inputs" and report.setting is None
    assert report.images[0].shown_title == "LR input" and report.images[0].mean.shape == (12, 10)
    with pytest.raises(ValueError, match=r"image too small: s\.png is 20x6 \(at least 8 px per side needed\)"):
        rdam_report(student, [("s.png", torch.rand(3, 6, 20))], model="m", scale=2)
    with pytest.raises(ValueError, match=r"^s\.png: image too small"):
        rdam_report(student, [("s.png", torch.rand(3, 12, 20))], model="m", scale=2, setting=parse_degradation("iso:1"))
    with pytest.raises(ValueError, match="no images"):
        rdam_report(student, [], model="m", scale=2)


def test_rdam_report_save_round_trip(tmp_path: Path) -> None:
    images = [("a.png", torch.rand(3, 16, 16)), ("a.png", torch.rand(3, 20, 18))]
    setting = parse_degradation("aniso:2,1,30")
    report = rdam_report(_student(), images, model="m", scale=2, setting=setting, seed=9)
    path = report.save(tmp_path / "rdam.npz")
    data = np.load(path)
    per_image = [f"{k}_{i}" for i in range(2) for k in ("mean", "per_block", "per_conv", "lr")]
    assert list(data.keys()) == ["names", "conv_names", "model", "scale", "degradation", "seed", *per_image]
    assert data["names"].tolist() == ["a", "a"] and data["conv_names"].tolist() == report.conv_names
    assert (str(data["model"]), int(data["scale"]), int(data["seed"])) == ("m", 2, 9)
    assert json.loads(str(data["degradation"])) == setting.as_dict()
    for i, image in enumerate(report.images):
        for key, value in (("mean", image.mean), ("per_block", image.per_block), ("per_conv", image.per_conv)):
            assert np.array_equal(data[f"{key}_{i}"], value) and data[f"{key}_{i}"].dtype == np.float32
        assert np.array_equal(data[f"lr_{i}"], image.lr)
    _refuses_then_overwrites(report.save, path)
    lr_only = rdam_report(_student(), images[:1], model="m", scale=2)
    assert json.loads(str(np.load(lr_only.save(tmp_path / "lr.npz"))["degradation"])) is None


# ------------------------------------------------------------------------------------------------------------------
# adaptation


def _mln() -> LoadedMLN:
    torch.manual_seed(0)
    return LoadedMLN(mln=MetaLearningNetwork(scale=2, n_feats=8, n_body=1).eval(), label="a", source="a.st", scale=2)


def test_adaptation_report_is_run_adaptation_on_the_preset_pairs(bench: BenchmarkSet) -> None:
    mln = _mln()
    preset = get_eval_preset("gaussian8")
    report = adaptation_report([mln], bench, preset, inner_lr=[0.01, 0.005], max_images=1, crop=24)
    assert isinstance(report, AdaptationReport) and report.steps == 2 and report.n_pairs == 8
    settings = preset.settings_for(2)
    hr = center_crop(bench[0].hr, size=24, scale=2).unsqueeze(0)
    pairs = [
        (
            bench[0].name,
            s.label,
            preset.degrade(hr, scale=2, setting_index=i, dataset="Set5", stem=bench[0].name).lr,
            hr,
        )
        for i, s in enumerate(settings)
    ]
    direct = run_adaptation([mln], pairs, inner_lr=[0.01, 0.005])
    assert np.array_equal(report.curves[0].psnr, direct[0].psnr) and report.curves[0].pairs == direct[0].pairs
    lines = report.summary().splitlines()
    assert lines[0] == (
        "MLN adaptation on Set5 x2, gaussian8 (8 pairs = 1 images x 8 settings), inner lr 0.01/0.005, Upscaler fixed; "
        "PSNR (dB, sr-y)"
    )
    mean = direct[0].mean
    assert lines[1:] == [
        "step         a",
        *(f"{k:>4}  {mean[k]:>8.3f}" for k in range(3)),
        f"gain  {mean[-1] - mean[0]:>+8.3f}",
    ]
    x4 = LoadedMLN(mln=mln.mln, label="b", source="-", scale=4)
    with pytest.raises(ValueError, match="not to the MLNs' scale x4"):
        adaptation_report([x4], bench, preset, inner_lr=[0.1])
    with pytest.raises(ValueError, match="different factors: a x2, b x4"):
        adaptation_report([mln, x4], bench, preset, inner_lr=[0.1])


def test_adaptation_report_without_steps(bench: BenchmarkSet) -> None:
    report = adaptation_report([_mln()], bench, get_eval_preset("gaussian8"), inner_lr=[], max_images=1)
    assert report.steps == 0 and report.rate_text == "" and "inner lr -," in report.summary()
    assert len(report.summary().splitlines()) == 3 and report.rows()[1][0] == 0


def test_adaptation_report_save_round_trip(bench: BenchmarkSet, tmp_path: Path) -> None:
    a, b = _mln(), LoadedMLN(mln=_mln().mln, label="b", source="b.st", scale=2)
    report = adaptation_report([a, b], bench, get_eval_preset("gaussian8"), inner_lr=[0.01], max_images=1)
    path = report.save(tmp_path / "ada.json")
    record = json.loads(path.read_text())
    assert record == json.loads(json.dumps(report.record()))
    assert list(record) == [
        *("dataset", "scale", "preset", "metric_protocol", "steps", "inner_lr", "adapted", "n_images", "crop"),
        *("n_pairs", "curves"),
    ]
    assert record["inner_lr"] == [0.01] and record["n_pairs"] == 8 and record["curves"][1]["label"] == "b"
    assert record["curves"][0]["psnr_mean"] == report.curves[0].mean
    _refuses_then_overwrites(report.save, path)
    table = report.save_csv(tmp_path / "ada.csv")
    rows = list(csv.reader(table.open()))
    assert rows == [["step", "a", "b"], *([str(k), *(f"{c.mean[k]:.4f}" for c in report.curves)] for k in range(2))]
    _refuses_then_overwrites(report.save_csv, table)


# ------------------------------------------------------------------------------------------------------------------
# kernels


def _dmsr() -> DMSRNet:
    torch.manual_seed(0)
    return DMSRNet(scale=2, n_feats=8, n_groups=1, n_blocks=1, extractor_channels=8).eval()


def test_kernel_report_is_analyze_kernels(bench: BenchmarkSet) -> None:
    report = kernel_report(
        _dmsr(), bench, scale=2, widths=[0.8, 2.0], noise_levels=[0, 15], model="d", max_images=2, crop=24
    )
    direct = analyze_kernels(_dmsr(), bench, scale=2, widths=[0.8, 2.0], noise_levels=[0, 15], max_images=2, crop=24)
    assert isinstance(report, KernelReport) and report.analysis == direct
    assert report.widths == [0.8, 2.0] and report.noise_levels == [0.0, 15.0] and report.n_images == 2
    lines = report.summary().splitlines()
    assert lines[0] == "mean estimated kernel width (px) on Set5 x2, 2 images x 4 settings:"
    assert lines[1] == "   σk    true      σn 0     σn 15"
    assert lines[2].startswith("  0.8   0.800  ") and lines[-1] == report.score
    assert lines[-2].startswith("mean estimated noise level (std(N_est) x 255): σn 0: ")
    assert report.score.startswith("correlation of true and estimated widths r = ")


def test_kernel_report_save_round_trip(bench: BenchmarkSet, tmp_path: Path) -> None:
    report = kernel_report(_dmsr(), bench, scale=2, widths=[1.3], noise_levels=[0, 50], model="d", arch="dmsr")
    path = report.save(tmp_path / "k.json")
    record = json.loads(path.read_text())
    assert list(record)[:9] == [
        *("model", "arch", "dataset", "scale", "protocol", "widths", "noise_levels", "n_images", "crop"),
    ]
    assert record["widths"] == [1.3] and record["noise_levels"] == [0.0, 50.0] and record["n_records"] == 6
    assert record["correlation"] is None  # one true width: r is undefined, written as null
    assert record["settings"][1]["est_width_mean"] == pytest.approx(report.analysis.settings[1].est_width_mean)
    _refuses_then_overwrites(report.save, path)
    table = report.save_csv(tmp_path / "k.csv")
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 6 and [r["image"] for r in rows[:2]] == ["im0", "im0"]
    first = report.analysis.records[0]
    assert rows[0]["est_width"] == f"{first.est_width:.6f}" and rows[1]["sigma_n"] == "50"
    _refuses_then_overwrites(report.save_csv, table)


# ------------------------------------------------------------------------------------------------------------------
# the figures


def test_report_figures(bench: BenchmarkSet, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    from blindsr.analysis.plots import (
        plot_adaptation_report,
        plot_idr_report,
        plot_kernel_report,
        plot_rdam_report,
        plot_rdam_report_blocks,
    )

    settings = degradation_set(kind="iso", scale=2, widths=(0.8, 1.6))
    idr = idr_report(_student(), bench, settings, scale=2, kind="iso", model="m", n_iter=30)
    rdam = rdam_report(_student(), [("a.png", torch.rand(3, 16, 16))], model="m", scale=2)
    ada = adaptation_report([_mln()], bench, get_eval_preset("gaussian8"), inner_lr=[0.01], max_images=1)
    ker = kernel_report(_dmsr(), bench, scale=2, widths=[1.3], noise_levels=[0], model="d", max_images=1)
    plot_idr_report(idr, path=tmp_path / "idr.png")
    plot_rdam_report(rdam, path=tmp_path / "rdam.png")
    plot_rdam_report_blocks(rdam, 0, path=tmp_path / "blocks.png")
    plot_adaptation_report(ada, path=tmp_path / "ada.png")
    plot_kernel_report(ker, path=tmp_path / "ker.png")
    for name in ("idr", "rdam", "blocks", "ada", "ker"):
        with Image.open(tmp_path / f"{name}.png") as img:
            assert img.format == "PNG" and img.size[0] > 200
