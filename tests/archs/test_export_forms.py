"""The export-only forms that the architectures' ``prepare_export`` selects: equal to the eager forms, traceable at
any size and batch, and the eager forms keep their size checks."""

from __future__ import annotations

import pytest
import torch

from blindsr.archs.mrda import use_traceable_depthwise
from blindsr.archs.toy import use_traceable_skip
from blindsr.nets.layers.dynamic_depthwise import DepthwiseBranch, dynamic_depthwise_conv2d
from blindsr.nets.toy import ToySR
from blindsr.ops.resize import bicubic_upscale
from blindsr.ops.resize_traceable import bicubic_upscale_traceable


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("border", ["symmetric", "replicate"])
def test_traceable_bicubic_upscale_equals_the_matrix_form(factor: int, border: str) -> None:
    g = torch.Generator().manual_seed(0)
    for h, w in ((1, 1), (1, 4), (2, 3), (5, 7), (13, 9)):
        x = torch.rand(2, 3, h, w, generator=g, dtype=torch.float64)
        got = bicubic_upscale_traceable(x, factor, border=border)  # type: ignore[arg-type]
        want = bicubic_upscale(x, factor, border=border)  # type: ignore[arg-type]
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_traceable_depthwise_equals_the_grouped_convolution(k: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 7, 6, generator=g, dtype=torch.float64)
    weight = torch.randn(3, 4, k, k, generator=g, dtype=torch.float64)
    got = dynamic_depthwise_conv2d(x, weight, impl="traceable", kernel_size=k)
    torch.testing.assert_close(got, dynamic_depthwise_conv2d(x, weight), rtol=0, atol=1e-12)


def test_the_depthwise_size_checks_run_in_eager_mode() -> None:
    x = torch.randn(2, 4, 5, 5)
    for impl in ("grouped", "traceable"):
        with pytest.raises(ValueError, match="positive odd"):
            dynamic_depthwise_conv2d(x, torch.randn(2, 4, 2, 2), impl=impl, kernel_size=3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="weight must have shape"):
            dynamic_depthwise_conv2d(x, torch.randn(3, 4, 3, 3), impl=impl, kernel_size=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kernel_size is 5"):
        dynamic_depthwise_conv2d(x, torch.randn(2, 4, 3, 3), kernel_size=5)
    with pytest.raises(ValueError, match="needs kernel_size"):
        dynamic_depthwise_conv2d(x, torch.randn(2, 4, 3, 3), impl="traceable")
    with pytest.raises(ValueError, match="impl must be"):
        dynamic_depthwise_conv2d(x, torch.randn(2, 4, 3, 3), impl="loop")  # type: ignore[arg-type]


def test_the_prepared_forms_trace_to_graphs_that_follow_batch_and_size() -> None:
    """A trace at one batch and size, run on another: what the TorchScript ONNX exporter relies on."""
    torch.manual_seed(0)
    branch = DepthwiseBranch(code_dim=6, channels=4, kernel_size=3, kernel="dynamic").eval()
    use_traceable_depthwise(branch)
    assert branch.impl == "traceable"
    x, code = torch.randn(1, 4, 8, 9), torch.randn(1, 6)
    with torch.no_grad():
        traced = torch.jit.trace(branch, (x, code), check_trace=False)
    x2, code2 = torch.randn(3, 4, 5, 11), torch.randn(3, 6)
    with torch.no_grad():
        torch.testing.assert_close(traced(x2, code2), DepthwiseBranch.forward(branch, x2, code2), rtol=0, atol=1e-6)

    toy = ToySR(scale=3, n_feats=4, n_blocks=1).eval()
    torch.nn.init.normal_(toy.tail.weight)
    reference = ToySR(scale=3, n_feats=4, n_blocks=1).eval()
    reference.load_state_dict(toy.state_dict())
    use_traceable_skip(toy)
    assert toy.traceable_skip and not reference.traceable_skip
    with torch.no_grad():
        traced = torch.jit.trace(toy, torch.rand(1, 3, 6, 7), check_trace=False)
        lr = torch.rand(2, 3, 9, 5)
        torch.testing.assert_close(traced(lr), reference(lr), rtol=0, atol=1e-5)
