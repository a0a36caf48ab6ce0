"""EMA of weights: the update rule and the decay warm-up."""

from __future__ import annotations

import torch
from torch import nn

from blindsr.engine.ema import EMA


def test_update_rule_and_warmup() -> None:
    nets = nn.ModuleDict({"a": nn.Linear(2, 2)})
    ema = EMA(nets, decay=0.999)
    assert ema.decay_at(0) == 0.1 and ema.decay_at(10_000) == 0.999
    start = ema.networks["a"].weight.clone()
    with torch.no_grad():
        nets["a"].weight.add_(1.0)
    ema.update(nets, step=0)
    # decay 0.1 at step 0: 90 % of the way to the new weights
    assert torch.allclose(ema.networks["a"].weight, 0.1 * start + 0.9 * nets["a"].weight)
    plain = EMA(nets, decay=0.5, warmup=False)
    assert plain.decay_at(0) == 0.5


def test_ema_is_frozen_and_a_copy() -> None:
    nets = nn.ModuleDict({"a": nn.Linear(2, 2)})
    ema = EMA(nets, decay=0.9)
    assert all(not p.requires_grad for p in ema.networks.parameters())
    assert ema.networks["a"].weight.data_ptr() != nets["a"].weight.data_ptr()
