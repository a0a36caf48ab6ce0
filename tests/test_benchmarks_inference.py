"""benchmarks/inference.py in quick mode on a tiny random DMSR: every variant runs, the MAC count is exact."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from blindsr.nets.dmsr import DMSRNet
from blindsr.zoo import save_release

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
KWARGS: dict[str, object] = {
    "scale": 2,
    "n_feats": 8,
    "n_groups": 1,
    "n_blocks": 1,
    "reduction": 4,
    "extractor_channels": 8,
    "kernel_size": 7,
}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("inference")


def test_mac_count_is_exact_for_convs_linear_and_the_dynamic_filter(bench: ModuleType) -> None:
    macs = _load("_macs")
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 6, 1, groups=2), nn.Flatten(), nn.Linear(6 * 25, 2))
    count = macs.count_macs(net, (2, 3, 5, 5))
    assert count.by_kind == {"conv": 2 * 25 * (4 * 3 * 9 + 6 * 2), "linear": 2 * 2 * 150, "dynamic_filter": 0}
    assert next(net.parameters()).device.type == "cpu"  # counted on a meta copy

    dmsr = DMSRNet(**KWARGS)  # type: ignore[arg-type]
    n_mbm0 = DMSRNet(**{**KWARGS, "n_mbm": 0})  # type: ignore[arg-type]
    with_mbm = macs.count_macs(dmsr, (1, 3, 10, 12))
    without = macs.count_macs(n_mbm0, (1, 3, 10, 12))
    hr_pixels = 20 * 24
    assert with_mbm.by_kind["dynamic_filter"] == 49 * 3 * hr_pixels  # k² · C · H · W
    # the meta-deblur's own layers: FC(49 -> 15), Conv3x3(18 -> 49) and Conv3x3(3 -> 3) at the HR size
    extra_conv = hr_pixels * (49 * 18 * 9 + 3 * 3 * 9)
    assert with_mbm.by_kind["conv"] - without.by_kind["conv"] == extra_conv
    assert with_mbm.by_kind["linear"] == 15 * 49


def test_quick_run_of_every_variant_and_the_tiled_part(bench: ModuleType, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    release = tmp_path / "tiny.safetensors"
    save_release(DMSRNet(**KWARGS), release, arch="dmsr", arch_kwargs=KWARGS, scale=2)  # type: ignore[arg-type]
    spec = bench.ModelSpec(label="tiny", source=str(release))
    ceiling = bench.matmul_peak(64, repeats=1)
    assert ceiling["fp32"]["gmacs"] > 0 and ceiling["bf16"]["gflops"] == pytest.approx(2 * ceiling["bf16"]["gmacs"])

    rows = bench.bench_model(
        spec, [(20, 28)], repeats=1, settle=0.0, threads=1, memory=False, ceiling=ceiling, log=lambda _: None
    )
    by_variant = {r.variant: r for r in rows}
    assert list(by_variant) == list(bench.VARIANTS.values())
    assert by_variant["fp32"].speedup == 1.0 and by_variant["fp32"].max_abs_err == 0.0
    assert by_variant["fp32 channels_last"].max_abs_err < 1e-5
    assert by_variant["onnxruntime fp32"].max_abs_err < 1e-4
    assert 0 < by_variant["bf16 autocast"].max_abs_err < 0.5
    assert all(r.gmac > 0 and r.ceiling_fraction is not None for r in rows)
    assert "| tiny | 20x28 | onnxruntime fp32 |" in bench.markdown_table(rows)

    # the peak-memory probe and the tiled Upscaler, in this process (the benchmark runs them in fresh ones)
    probe = bench.memory_probe(
        {"spec": {"label": "tiny", "source": str(release)}, "variant": "fp32", "shape": [1, 3, 20, 28], "threads": 1}
    )
    assert probe["peak_mib"] >= 0 and probe["method"]
    (tiled,) = bench.bench_tiled(spec, 40, [16], threads=1, subprocess_=False)
    assert tiled["output_shape"] == [1, 3, 80, 80] and tiled["tile_used"] == 16 and tiled["seconds"] > 0
