from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call

from blindsr.methods.meta import inner_adapt, meta_parameters


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.tail = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.tail(torch.tanh(self.body(x)))


def _setup() -> tuple[_Net, Tensor, Tensor]:
    torch.manual_seed(0)
    return _Net(), torch.randn(8, 4), torch.randn(8, 2)


def test_inner_loop_leaves_the_meta_weights_untouched_and_lowers_the_loss() -> None:
    net, x, y = _setup()
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def loss(out: Tensor) -> Tensor:
        return (out - y).abs().mean()

    for order in ("none", "first", "second"):
        adapted = inner_adapt(net, meta_parameters(net), loss, (x,), steps=5, lr=0.1, order=order)  # type: ignore[arg-type]
        for k, v in net.state_dict().items():
            assert torch.equal(v, before[k]), k  # no in-place edit: a "reset" is free and exact
        with torch.no_grad():
            assert float(loss(functional_call(net, adapted, (x,)))) < float(loss(net(x)))
    frozen = inner_adapt(net, meta_parameters(net), loss, (x,), steps=3, lr=0.1, adapt=lambda n: n.startswith("body"))
    assert torch.equal(frozen["tail.weight"], net.tail.weight) and not torch.equal(
        frozen["body.weight"], net.body.weight
    )


def test_gradient_orders() -> None:
    net, x, y = _setup()
    xq, yq = torch.randn(8, 4), torch.randn(8, 2)

    def inner(out: Tensor) -> Tensor:
        return (out - y).pow(2).mean()

    def outer_grad(order: str) -> Tensor:
        net.zero_grad()
        adapted = inner_adapt(net, meta_parameters(net), inner, (x,), steps=2, lr=0.5, order=order)  # type: ignore[arg-type]
        (functional_call(net, adapted, (xq,)) - yq).pow(2).mean().backward()
        assert net.body.weight.grad is not None
        return net.body.weight.grad.clone()

    first, second = outer_grad("first"), outer_grad("second")
    # first order: the outer gradient evaluated at the adapted weights, applied to the meta-weights
    adapted = inner_adapt(net, meta_parameters(net), inner, (x,), steps=2, lr=0.5, order="none")
    leaf = {k: v.clone().requires_grad_(True) for k, v in adapted.items()}
    (functional_call(net, leaf, (xq,)) - yq).pow(2).mean().backward()
    torch.testing.assert_close(first, leaf["body.weight"].grad)
    assert not torch.allclose(first, second)  # second order differs (the Hessian term)
    # "none" keeps no graph to the meta-weights
    assert all(not t.requires_grad for t in adapted.values())


def test_per_step_rates_and_errors() -> None:
    net, x, y = _setup()

    def loss(out: Tensor) -> Tensor:
        return (out - y).abs().mean()

    a = inner_adapt(net, meta_parameters(net), loss, (x,), steps=2, lr=[0.1, 0.05], order="none")
    assert set(a) == {n for n, _ in net.named_parameters()}
    with pytest.raises(ValueError, match="2 step sizes for 3"):
        inner_adapt(net, meta_parameters(net), loss, (x,), steps=3, lr=[0.1, 0.05])
    with pytest.raises(ValueError, match="nothing|no parameter"):
        inner_adapt(net, meta_parameters(net), loss, (x,), steps=1, lr=0.1, adapt=lambda n: False)
    assert inner_adapt(net, meta_parameters(net), loss, (x,), steps=0, lr=0.1)["body.weight"] is net.body.weight
