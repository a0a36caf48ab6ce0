"""Oracle models in the evaluation runner and the report: given each cell's HR and true kernel, and labelled so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from blindsr.data.images import write_image
from blindsr.degradations.presets import get_eval_preset
from blindsr.eval.benchmark import OracleModel, bicubic_model, evaluate
from blindsr.eval.report import format_table


def _fake_sets(root: Path, names: tuple[str, ...] = ("Set5", "Urban100"), size: int = 34) -> Path:
    g = torch.Generator().manual_seed(0)
    for name in names:
        write_image(root / name / "HR" / "img0.png", torch.rand(3, size, size + 4, generator=g))
    return root


def test_an_oracle_gets_the_cells_hr_and_kernel_and_its_cells_say_so(tmp_path: Path) -> None:
    root = _fake_sets(tmp_path)
    preset = get_eval_preset("gaussian8-x4")
    calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def upscale(lr: torch.Tensor, scale: int, hr: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        assert not torch.is_grad_enabled() and not torch.is_inference_mode_enabled()  # it may adapt with autograd
        calls.append((lr, hr, kernel))
        return hr.clone()  # a perfect oracle

    cells = evaluate(
        OracleModel(upscale=upscale, uses="the HR image"),
        preset,
        data_root=root,
        datasets=["Set5"],
        progress=False,
    )
    settings = preset.settings_for(4)
    assert len(calls) == len(settings) == 8
    for i, ((lr, hr, kernel), setting) in enumerate(zip(calls, settings, strict=True)):
        assert hr.shape == (1, 3, 32, 36) and lr.shape == (1, 3, 8, 9)  # modcropped HR, its LR
        expected = setting.kernel_tensor(21).to(torch.float32)
        assert kernel.shape == (1, 21, 21) and kernel.dtype == torch.float32 and torch.equal(kernel[0], expected)
        assert torch.equal(lr, preset.degrade(hr, scale=4, setting_index=i, dataset="Set5", stem="img0").lr)
    assert all(c.oracle == "the HR image" for c in cells) and any(c.setting == "mean" for c in cells)
    record = cells[0].record()
    assert record["oracle"] is True and record["oracle_uses"] == "the HR image"
    blind = evaluate(bicubic_model, preset, data_root=root, datasets=["Set5"], progress=False, max_images=1)
    assert blind[0].oracle == "" and blind[0].record()["oracle"] is False and "oracle_uses" not in blind[0].record()
    with pytest.raises(ValueError, match="must say"):
        OracleModel(upscale=upscale, uses=" ")


def test_the_report_labels_an_oracle_and_compares_it_with_the_papers_oracle_teachers(tmp_path: Path) -> None:
    root = _fake_sets(tmp_path)
    preset = get_eval_preset("gaussian8-x4")

    def oracle(lr: torch.Tensor, scale: int, hr: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return bicubic_model(lr, scale)

    cells = evaluate(OracleModel(upscale=oracle, uses="the HR image (test)"), preset, data_root=root, progress=False)
    table = format_table(cells, preset)
    lines = table.splitlines()
    assert lines[0].startswith("ORACLE evaluation (not blind SR)") and "the HR image (test)" in lines[0]
    assert "ours (model, ORACLE)" in table
    t2 = next(line for line in lines if "paper MRDA_T2" in line)
    t3 = next(line for line in lines if "paper MRDA_T3" in line)
    assert "26.15" in t2 and "26.03" in t3  # MRDA Table V: Urban100 x4, Gaussian8 mean
    assert "Δ vs MRDA_T2" in table and "Table V" in table and "paper MRDA_S " not in table
    assert "Δ vs MRDA_T3" in format_table(cells, preset, delta_against="MRDA_T3")
    # a blind model's table is as before: no ORACLE line, the blind methods of Table II
    blind = format_table(evaluate(bicubic_model, preset, data_root=root, progress=False), preset)
    assert "ORACLE" not in blind and "paper MRDA_S " in blind and "MRDA_T2" not in blind


def test_a_blind_model_is_compared_with_the_method_the_preset_reproduces(tmp_path: Path) -> None:
    """Gaussian8 prints the paper's bicubic row first; a learned model's Δ is against MRDA_S (bicubic's: Bicubic)."""
    root = _fake_sets(tmp_path, ("Set5",))
    preset = get_eval_preset("gaussian8-x4")
    cells = evaluate(bicubic_model, preset, data_root=root, model_name="some-model", progress=False, max_images=1)
    table = format_table(cells, preset)
    assert "paper Bicubic" in table and "paper MRDA_S" in table and "Δ vs MRDA_S" in table
    assert "Δ vs Bicubic" not in table
    cells = evaluate(bicubic_model, preset, data_root=root, model_name="bicubic", progress=False, max_images=1)
    assert "Δ vs Bicubic" in format_table(cells, preset)
    assert "Δ vs DASR" in format_table(cells, preset, delta_against="DASR")
