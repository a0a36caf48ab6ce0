"""MAML's inner loop as a pure function over a parameter dict (MRDA, Alg. 1 lines 6-11 and Alg. 2 lines 4-9).

``inner_adapt`` never touches the module's own parameters: it runs the module with
:func:`torch.func.functional_call` on a dict of tensors and returns a new dict. So "resetting the MLN to its
meta-initialisation" (Alg. 2 line 4) is simply calling it again with the meta-parameters; the reference code's
in-place ``param.data.sub_`` + ``load_state_dict`` reset, which aliased the saved copy and restored nothing
(docs/specs/mrda.md §6.1), cannot happen here.

Gradient orders:
    ``"none"``    adaptation only (teacher/student stages): the result is detached, no graph is kept.
    ``"first"``   first-order MAML (the reference code's): inner gradients are constants, so the outer loss
                  differentiates to the meta-parameters through the identity ``theta_i = theta_M - alpha g``.
    ``"second"``  full MAML: inner gradients keep their graph (``create_graph=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call

from blindsr.ops.precision import fp32_region

__all__ = ["GradOrder", "inner_adapt", "meta_parameters"]

GradOrder = Literal["none", "first", "second"]


def meta_parameters(module: nn.Module, *, detach: bool = False) -> dict[str, Tensor]:
    """The module's parameters as a dict, the starting point of :func:`inner_adapt`.

    Args:
        module: the meta-learned network.
        detach: return detached leaf copies that require grad (for adaptation without meta-gradients).
    """
    if not detach:
        return dict(module.named_parameters())
    return {name: p.detach().requires_grad_(True) for name, p in module.named_parameters()}


def inner_adapt(
    module: nn.Module,
    params: Mapping[str, Tensor],
    loss_fn: Callable[[Any], Tensor],
    inputs: Sequence[Any],
    *,
    steps: int,
    lr: float | Sequence[float],
    adapt: Callable[[str], bool] | None = None,
    order: GradOrder = "first",
) -> dict[str, Tensor]:
    """`steps` plain SGD steps on ``loss_fn(module(*inputs))``, functionally, in fp32 under any autocast.

    The steps run in :func:`~blindsr.ops.precision.fp32_region`: an inner update is a few 1e-6 of a weight, which a
    bf16 autocast would round away. Forwards of the *returned* weights must run in that region too (the callers'
    query losses and features do).

    Args:
        module: the network (its own parameters are never modified).
        params: the starting parameters (e.g. :func:`meta_parameters`); every name of the module's parameters.
        loss_fn: maps the module's output to a scalar loss (e.g. the L1 to the HR batch).
        inputs: positional arguments of the module's forward.
        steps: number of inner steps n (>= 0).
        lr: the step size alpha, or one per step (docs/specs/mrda.md §6.4: the reference code's 1e-2, 5e-3, 5e-3, ...).
        adapt: which parameter names are adapted (default: all); MRDA adapts the non-Upscaler ones only.
        order: ``"none"``, ``"first"`` or ``"second"`` (see the module text).

    Returns:
        A new dict of parameters: adapted tensors for the adapted names, the given tensors for the others.

    Raises:
        ValueError: a bad step count, step-size list or order, or nothing to adapt.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if order not in ("none", "first", "second"):
        raise ValueError(f"order must be 'none', 'first' or 'second', got {order!r}")
    rates = [float(lr)] * steps if isinstance(lr, (int, float)) else [float(v) for v in lr]
    if len(rates) != steps:
        raise ValueError(f"lr lists {len(rates)} step sizes for {steps} steps")
    names = [n for n in params if adapt is None or adapt(n)]
    if not names and steps:
        raise ValueError("no parameter is adapted (check `adapt`)")
    current: dict[str, Tensor] = dict(params)
    if order == "none":
        current = {n: (t.detach().requires_grad_(True) if n in names else t.detach()) for n, t in current.items()}
    device = next(iter(current.values())).device if current else torch.device("cpu")
    with torch.enable_grad(), fp32_region(device):  # the inner loop is always fp32 (blindsr.ops.precision)
        for rate in rates:
            loss = loss_fn(functional_call(module, current, tuple(inputs)))
            grads = torch.autograd.grad(loss, [current[n] for n in names], create_graph=order == "second")
            for name, grad in zip(names, grads, strict=True):
                if order == "none":
                    current[name] = (current[name] - rate * grad).detach().requires_grad_(True)
                elif order == "first":
                    current[name] = current[name] - rate * grad.detach()
                else:
                    current[name] = current[name] - rate * grad
    if order == "none":
        current = {n: t.detach() for n, t in current.items()}
    return current
