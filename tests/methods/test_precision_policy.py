"""The precision policy (blindsr.ops.precision): MAML's inner loop and every use of the adapted MLN run in fp32
under every precision a config can ask for, so the adaptation is never rounded away."""

from __future__ import annotations

import typing
from contextlib import AbstractContextManager
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.func import functional_call

from blindsr.config.schema import TrainConfig
from blindsr.degradations import get_training_preset
from blindsr.methods.meta import inner_adapt, meta_parameters
from blindsr.methods.mrda import MRDAMetaMethod, adapt_mln_features
from blindsr.methods.mrda.options import AdaptationOptions, MRDAMetaOptions
from blindsr.nets.mrda import MetaLearningNetwork

PRECISIONS: tuple[str, ...] = typing.get_args(typing.get_type_hints(TrainConfig)["precision"])
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _under(precision: str) -> AbstractContextManager[Any]:
    """What the training loop wraps a step in for `precision` (fp16 on the CPU too, to cover every dtype)."""
    if precision == "fp32":
        return torch.autocast("cpu", enabled=False)
    return torch.autocast("cpu", dtype=DTYPES[precision])


def _mln_and_batch() -> tuple[MetaLearningNetwork, Tensor, Tensor]:
    torch.manual_seed(0)
    mln = MetaLearningNetwork(scale=2, n_feats=8, n_body=2).requires_grad_(False)
    lr = torch.rand(2, 3, 12, 12)
    hr = torch.rand(2, 3, 24, 24)
    return mln, lr, hr


def test_every_configured_precision_is_covered() -> None:
    assert set(PRECISIONS) == {"fp32", *DTYPES}


def test_bf16_autocast_does_round_away_a_small_inner_update() -> None:
    """The failure the policy prevents: outside the fp32 region, a bf16 forward ignores most of an update of 1e-5."""
    mln, lr, _ = _mln_and_batch()
    theta = meta_parameters(mln, detach=True)
    nudged = {n: t * (1 + 1e-5) for n, t in theta.items()}
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        same = functional_call(mln, theta, (lr,)).features
        moved = functional_call(mln, nudged, (lr,)).features
    assert float((same == moved).float().mean()) > 0.9  # >90 % of D′'s entries do not move at all
    with torch.no_grad():
        exact = functional_call(mln, theta, (lr,)).features != functional_call(mln, nudged, (lr,)).features
    assert float(exact.float().mean()) > 0.9  # in fp32 they do


@pytest.mark.parametrize("precision", PRECISIONS)
def test_inner_adapt_is_fp32_under_every_precision(precision: str) -> None:
    mln, lr, hr = _mln_and_batch()

    def loss(out: Any) -> Tensor:
        assert out.sr.dtype == torch.float32  # the inner forward itself is fp32
        return (out.sr - hr).abs().mean()

    def adapt() -> dict[str, Tensor]:
        return inner_adapt(mln, meta_parameters(mln, detach=True), loss, (lr,), steps=2, lr=1e-3, order="none")

    reference = adapt()
    with _under(precision):
        adapted = adapt()
    for name, p in mln.named_parameters():
        assert torch.equal(adapted[name], reference[name]), name
        assert not torch.equal(adapted[name], p), f"{name} was not adapted under {precision}"


@pytest.mark.parametrize("precision", PRECISIONS)
def test_adapted_features_are_the_fp32_ones_under_every_precision(precision: str) -> None:
    mln, lr, hr = _mln_and_batch()
    options = AdaptationOptions(mln_feats=8, mln_body=2, inner_steps=2, inner_lr=1e-3)
    reference, ref_logs = adapt_mln_features(mln, lr, hr, options)
    with _under(precision):
        features, logs = adapt_mln_features(mln, lr, hr, options)
    assert features.dtype == torch.float32 and torch.equal(features, reference)
    assert torch.equal(torch.as_tensor(logs["adapt_l1_post"]), torch.as_tensor(ref_logs["adapt_l1_post"]))
    with torch.no_grad():
        unadapted = mln.degradation_features(lr)
    assert not torch.equal(features, unadapted)  # the adaptation reached D′
    assert float(logs["adapt_l1_post"]) < float(logs["adapt_l1_pre"])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_meta_stage_step_is_fp32_under_every_precision(precision: str) -> None:
    def step() -> tuple[Tensor, Tensor]:
        torch.manual_seed(1)
        method = MRDAMetaMethod(
            scale=2,
            degradation=get_training_preset("mrda-iso-x2"),
            options=MRDAMetaOptions(mln_feats=8, mln_body=2, inner_steps=2, tasks=2),
        )
        hr = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(2))
        nets = dict(method.networks.items())
        out = method.training_step(hr, step=1, generator=torch.Generator().manual_seed(3), nets=nets)
        out.loss.backward()
        grad = next(p.grad for p in nets["mln"].parameters() if p.grad is not None)
        return out.loss.detach(), grad

    loss, grad = step()
    with _under(precision):
        loss_p, grad_p = step()
    assert loss_p.dtype == torch.float32 and torch.equal(loss_p, loss) and torch.equal(grad_p, grad)
