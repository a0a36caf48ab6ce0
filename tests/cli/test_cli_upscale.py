"""`blindsr upscale`: folders in, the same kinds of images out, tiles, skipping, errors on one line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from blindsr.cli.main import main
from blindsr.nets.dmsr import DMSRNet
from blindsr.zoo import save_release

KWARGS: dict[str, Any] = {"scale": 2, "n_feats": 8, "n_groups": 1, "n_blocks": 1, "extractor_channels": 8}
RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("models") / "dmsr-tiny.safetensors"
    save_release(DMSRNet(**KWARGS), path, arch="dmsr", arch_kwargs=KWARGS, scale=2)
    return str(path)


def _photo(h: int, w: int) -> np.ndarray:
    """uint8 (h, w, 3): a smooth gradient with mild noise."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / w, y / h, (x + y) / (h + w)], axis=2) * 200 + 20
    return np.clip(base + RNG.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _upscale(*args: str) -> int:
    return main(["upscale", *args, "-q"])


def test_a_folder_of_mixed_images_with_a_corrupt_one(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_photo(20, 24)[:, :, 0]).save(src / "gray.png")
    Image.fromarray(np.dstack([_photo(18, 22), RNG.integers(0, 256, (18, 22), dtype=np.uint8)])).save(src / "rgba.png")
    Image.fromarray((_photo(16, 20)[:, :, 1].astype(np.uint16) * 257).astype("<u2")).save(src / "deep.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    code = _upscale(str(src), "-o", str(out), "-m", model, "--tile", "0")
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(src / "broken.png") in errors[0]
    assert "Traceback" not in captured.err and "1 of 4 failed" in captured.err
    assert "device: cpu" in captured.out or "device: cuda" in captured.out
    assert "precision: fp32" in captured.out and "model: " in captured.out
    expected = {"gray_x2.png": ("L", (48, 40)), "rgba_x2.png": ("RGBA", (44, 36)), "deep_x2.png": (None, (40, 32))}
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name, (mode, size) in expected.items():
        with Image.open(out / name) as img:
            assert img.size == size
            if mode is not None:
                assert img.mode == mode
            else:
                assert img.mode.startswith("I")  # 16-bit gray stays 16-bit
                assert int(np.array(img).max()) > 255


def test_tiled_output_matches_untiled_within_2_levels(tmp_path: Path, model: str) -> None:
    src = tmp_path / "photo.png"
    Image.fromarray(_photo(40, 52)).save(src)
    assert _upscale(str(src), "-o", str(tmp_path / "whole"), "-m", model, "--tile", "0") == 0
    assert _upscale(str(src), "-o", str(tmp_path / "tiled"), "-m", model, "--tile", "16", "--tile_pad", "16") == 0
    whole = np.array(Image.open(tmp_path / "whole" / "photo_x2.png")).astype(int)
    tiled = np.array(Image.open(tmp_path / "tiled" / "photo_x2.png")).astype(int)
    assert whole.shape == (80, 104, 3)
    assert int(np.abs(whole - tiled).max()) <= 2


def test_existing_outputs_are_skipped_unless_overwrite(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "a.jpg"
    Image.fromarray(_photo(16, 16)).save(src, quality=95)
    out = tmp_path / "out"
    assert _upscale(str(src), "-o", str(out), "-m", model) == 0
    target = out / "a_x2.jpg"  # --ext auto keeps JPEG
    assert Image.open(target).size == (32, 32)
    target.write_bytes(b"placeholder")
    capsys.readouterr()
    assert _upscale(str(src), "-o", str(out), "-m", model) == 0
    assert "skipped 1 existing" in capsys.readouterr().out
    assert target.read_bytes() == b"placeholder"
    assert _upscale(str(src), "-o", str(out), "-m", model, "--overwrite") == 0
    assert Image.open(target).size == (32, 32)


def test_recursive_keeps_the_folder_structure(tmp_path: Path, model: str) -> None:
    src = tmp_path / "in"
    (src / "trip" / "day1").mkdir(parents=True)
    Image.fromarray(_photo(12, 12)).save(src / "top.png")
    Image.fromarray(_photo(12, 14)).save(src / "trip" / "day1" / "beach.webp")
    out = tmp_path / "out"
    assert _upscale(str(src), "-o", str(out), "-m", model, "--recursive", "--ext", "png", "--suffix", "_x2") == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["top_x2.png", "trip/day1/beach_x2.png"]
    flat = tmp_path / "flat"
    assert _upscale(str(src), "-o", str(flat), "-m", model) == 0
    assert [p.name for p in flat.rglob("*") if p.is_file()] == ["top_x2.png"]


def test_alternative_spellings_outscale_and_degradation_files(tmp_path: Path, model: str) -> None:
    src = tmp_path / "p.png"
    Image.fromarray(_photo(12, 16)).save(src)
    out = tmp_path / "out"
    args = [str(src), "-o", str(out), "-m", model, "--tile_pad", "4", "--outscale", "3", "--save_degradation"]
    assert _upscale(*args) == 0
    assert Image.open(out / "p_x3.png").size == (48, 36)
    assert Image.open(out / "p_x3_kernel.png").size == (256, 256)
    assert Image.open(out / "p_x3_noise.png").size == (16, 12)  # LR size
    noise = np.load(out / "p_x3_noise.npy")
    assert noise.shape == (12, 16, 3) and noise.dtype == np.float32


def test_never_writes_over_an_input(tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_photo(12, 12)).save(src / "a.png")
    before = (src / "a.png").read_bytes()
    code = _upscale(str(src), "-o", str(src), "-m", model, "--suffix", "", "--overwrite")
    err = capsys.readouterr().err
    assert code == 1 and "refusing to overwrite the input" in err and "1 of 1 failed" in err
    assert (src / "a.png").read_bytes() == before


def test_outputs_inside_the_input_folder_are_not_inputs_next_time(tmp_path: Path, model: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_photo(12, 12)).save(src / "a.png")
    assert _upscale(str(src), "-o", str(src / "sr"), "-m", model, "-r") == 0
    assert _upscale(str(src), "-o", str(src / "sr"), "-m", model, "-r", "--overwrite") == 0
    assert sorted(p.name for p in (src / "sr").iterdir()) == ["a_x2.png"]


def test_usage_errors_exit_2_on_one_line(tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _upscale(str(tmp_path / "missing.png"), "-m", model) == 2
    assert _upscale(str(tmp_path), "-m", model) == 2  # an empty folder
    Image.fromarray(_photo(12, 12)).save(tmp_path / "a.png")
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", "no-such-model") == 2
    assert _upscale(str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", model, "--device", "tpu") == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 4 and all(line.startswith("blindsr upscale: error:") for line in lines), lines
    assert "does not exist" in lines[0] and "no images found" in lines[1] and "unknown device" in lines[3]


def test_fp16_on_cpu_is_reported_and_runs_in_fp32(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(_photo(12, 12)).save(tmp_path / "a.png")
    args = [str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", model, "--device", "cpu", "--precision", "fp16"]
    assert _upscale(*args) == 0
    out = capsys.readouterr().out
    assert "precision: fp32" in out and "note: fp16 is not supported on the CPU" in out


def test_two_inputs_with_one_output_name_are_not_both_written(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(_photo(12, 12)).save(tmp_path / "a.png")
    Image.fromarray(_photo(14, 14)).save(tmp_path / "a.jpg")
    code = _upscale(
        str(tmp_path / "a.jpg"), str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", model, "--ext", "png"
    )
    err = capsys.readouterr().err
    assert code == 1 and "is also the output of" in err and "1 of 2 failed" in err
    assert Image.open(tmp_path / "o" / "a_x2.png").size == (28, 28)  # the first one, a.jpg


def test_mrda_model_saves_its_idr(tmp_path: Path) -> None:
    from blindsr.archs import constructor_kwargs
    from blindsr.nets.mrda import MRDAStudent
    from blindsr.zoo import save_release

    kwargs = {"scale": 2, "n_feats": 8, "n_blocks": 1, "den_channels": 8, "idr_dim": 16}
    weights = tmp_path / "mrda.safetensors"
    net = MRDAStudent(**constructor_kwargs("mrda_s", kwargs))
    save_release(net, weights, arch="mrda_s", arch_kwargs=kwargs, scale=2)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_photo(20, 24)).save(src / "a.png")
    assert _upscale(str(src), "-o", str(tmp_path / "out"), "-m", str(weights), "--save-degradation") == 0
    idr = np.load(tmp_path / "out" / "a_x2_idr.npy")
    assert idr.shape == (16,) and idr.dtype == np.float32 and np.isfinite(idr).all()
    assert not (tmp_path / "out" / "a_x2_kernel.png").exists()  # MRDA has no explicit kernel


def test_default_model_follows_outscale(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from blindsr.cli.upscale import default_model
    from blindsr.zoo import cards

    x4 = cards.get_card("dmsr-x4")
    fake = tuple(
        dataclasses.replace(
            x4, name=f"dmsr-x{s}.lite", scale=s, arch_kwargs={**x4.arch_kwargs, "scale": s}, noise_free_variant=""
        )
        for s in (2, 4)
    )
    monkeypatch.setattr(cards, "MODEL_CARDS", (*fake, cards.get_card("mrda-x4")))
    assert default_model(None) == "dmsr-x4"
    assert [default_model(s) for s in (1.5, 2, 2.5, 3, 4, 6)] == ["dmsr-x2", "dmsr-x2"] + ["dmsr-x4"] * 4
    monkeypatch.setattr(cards, "MODEL_CARDS", (cards.get_card("mrda-x4"),))
    assert default_model(2) == "dmsr-x4"


def test_one_input_file_with_an_output_file_name(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "photo.jpg"
    Image.fromarray(_photo(16, 16)).save(src, quality=95)
    big = tmp_path / "sub" / "big.png"  # a new folder, a file name with another format than the input's
    assert _upscale(str(src), "-o", str(big), "-m", model) == 0
    with Image.open(big) as out:
        assert out.format == "PNG" and out.size == (32, 32)
    assert sorted(p.name for p in big.parent.iterdir()) == ["big.png"]
    # an existing output file is skipped unless --overwrite, as in a folder
    big.write_bytes(b"placeholder")
    assert _upscale(str(src), "-o", str(big), "-m", model) == 0
    assert big.read_bytes() == b"placeholder"
    assert _upscale(str(src), "-o", str(big), "-m", model, "--overwrite") == 0
    assert Image.open(big).size == (32, 32)
    # -o naming a file disagrees with --ext; two inputs keep -o a folder; -o cannot be the input itself
    capsys.readouterr()
    assert _upscale(str(src), "-o", str(tmp_path / "x.png"), "-m", model, "--ext", "jpg") == 2
    assert "disagree" in capsys.readouterr().err
    assert _upscale(str(src), "-o", str(tmp_path / "x.jpeg"), "-m", model, "--ext", "jpg") == 0
    assert _upscale(str(src), "-o", str(src), "-m", model) == 1
    assert "refusing to overwrite the input" in capsys.readouterr().err
    second = tmp_path / "second.png"
    Image.fromarray(_photo(12, 12)).save(second)
    assert _upscale(str(src), str(second), "-o", str(tmp_path / "many.png"), "-m", model) == 0
    assert (tmp_path / "many.png" / "photo_x2.jpg").is_file() and (tmp_path / "many.png" / "second_x2.png").is_file()


# ------------------------------------------------------------------------------------------------ issue 18


def test_a_tiled_image_shows_a_tile_bar_unless_quiet_and_writes_the_same(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(_photo(32, 40)).save(tmp_path / "p.png")
    assert main(["upscale", str(tmp_path / "p.png"), "-o", str(tmp_path / "bar"), "-m", model, "--tile", "8"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"tiles: +0%\|.*\| 0/20 \[00:00<\?", err)  # 4 x 5 tiles, with tqdm's ETA field
    assert _upscale(str(tmp_path / "p.png"), "-o", str(tmp_path / "quiet"), "-m", model, "--tile", "8") == 0
    assert "tiles" not in capsys.readouterr().err
    bar, quiet = (np.array(Image.open(tmp_path / d / "p_x2.png")) for d in ("bar", "quiet"))
    assert np.array_equal(bar, quiet)
    # one tile: no second bar
    assert main(["upscale", str(tmp_path / "p.png"), "-o", str(tmp_path / "one"), "-m", model, "--tile", "0"]) == 0
    assert "tiles:" not in capsys.readouterr().err


def test_the_summary_names_the_output_file(tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]) -> None:
    Image.fromarray(_photo(12, 12)).save(tmp_path / "p.png")
    assert _upscale(str(tmp_path / "p.png"), "-o", str(tmp_path / "big.png"), "-m", model) == 0
    assert f"wrote 1 of 1 image(s) to {tmp_path / 'big.png'}\n" in capsys.readouterr().out


def test_the_scale_is_in_the_default_name_so_two_scales_both_run(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from blindsr.cli.upscale import default_suffix

    assert (default_suffix(4.0), default_suffix(2.5)) == ("_x4", "_x2.5")
    Image.fromarray(_photo(12, 14)).save(tmp_path / "p.png")
    out = tmp_path / "o"
    assert _upscale(str(tmp_path / "p.png"), "-o", str(out), "-m", model) == 0
    assert _upscale(str(tmp_path / "p.png"), "-o", str(out), "-m", model, "-s", "3") == 0
    assert "skipped" not in capsys.readouterr().out
    assert Image.open(out / "p_x2.png").size == (28, 24) and Image.open(out / "p_x3.png").size == (42, 36)
    assert _upscale(str(tmp_path / "p.png"), "-o", str(out), "-m", model, "--suffix", "_out") == 0  # the old names
    assert sorted(p.name for p in out.iterdir()) == ["p_out.png", "p_x2.png", "p_x3.png"]


def _mrda_release(path: Path) -> str:
    from blindsr.archs import constructor_kwargs
    from blindsr.nets.mrda import MRDAStudent

    kwargs = {"scale": 2, "n_feats": 8, "n_blocks": 1, "den_channels": 8, "idr_dim": 16}
    save_release(MRDAStudent(**constructor_kwargs("mrda_s", kwargs)), path, arch="mrda_s", arch_kwargs=kwargs, scale=2)
    return str(path)


def test_save_degradation_leaves_no_files_of_another_model(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    mrda = _mrda_release(tmp_path / "mrda.safetensors")
    Image.fromarray(_photo(16, 16)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    base = [str(tmp_path / "a.png"), "-o", str(out), "--save-degradation"]
    assert _upscale(*base, "-m", model) == 0
    dmsr_line = capsys.readouterr().out
    assert re.search(
        r"a\.png: estimated blur σ ≈ \d+\.\d\d px \(how well this estimate follows the true blur", dmsr_line
    )
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.png", "a_x2_kernel.png", "a_x2_noise.npy", "a_x2_noise.png"]
    (out / "a_x2.png").unlink()  # the side files alone still count as an existing output
    assert _upscale(*base, "-m", mrda) == 0
    assert "skipped 1 existing" in capsys.readouterr().out and not (out / "a_x2.png").exists()
    assert _upscale(*base, "-m", mrda, "--overwrite") == 0  # the DMSR files are not left beside the MRDA output
    err = capsys.readouterr().err
    assert "estimates no blur kernel and no noise map" in err and "removes any an earlier run left" in err
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.png", "a_x2_idr.npy"]
    assert _upscale(*base, "-m", model, "--overwrite") == 0  # and back: the IDR goes
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.png", "a_x2_kernel.png", "a_x2_noise.npy", "a_x2_noise.png"]


def test_the_blur_estimate_line_quotes_the_cards_correlation(
    tmp_path: Path, model: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from blindsr.cli.upscale import _kernel_reliability
    from blindsr.zoo.card import ModelCard
    from blindsr.zoo.cards import get_card

    card = get_card("dmsr-x4")
    assert card.kernel_estimate_r == 0.106 and "blindsr analyze kernels -m dmsr-x4.lite" in card.kernel_estimate_source
    assert _kernel_reliability(card, card.name).startswith(
        "this model's estimate does not track the true blur: r = 0.11 on Set5"
    )
    assert get_card("mrda-x4.iso-lite").kernel_estimate_r is None  # no kernel estimate, nothing measured
    fields = {"name": "toy-x2", "arch": "toy", "arch_kwargs": {}, "scale": 2, "weights": "t.safetensors"}
    with pytest.raises(ValueError, match="kernel_estimate_r must be in"):
        ModelCard(**fields, sha256="0" * 64, kernel_estimate_r=1.5, kernel_estimate_source="x")
    with pytest.raises(ValueError, match="together"):
        ModelCard(**fields, sha256="0" * 64, kernel_estimate_r=0.5)
    good = ModelCard(**fields, sha256="0" * 64, kernel_estimate_r=0.95, kernel_estimate_source="x")
    assert "tracks the true blur: r = 0.95" in (good.kernel_estimate_reliability() or "")
