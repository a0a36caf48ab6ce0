"""Stage 1b, ``mrda_meta`` (Alg. 1, docs/specs/mrda.md §4.2): MAML of the MLN, m tasks of n inner SGD steps each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

from blindsr.degradations import DegradationParams, DegradationSpec, degrade, sample_degradation
from blindsr.methods.meta import inner_adapt, meta_parameters
from blindsr.methods.mrda.options import MRDAMetaOptions
from blindsr.methods.mrda.shared import check_scale, l1, mln_inference, plain
from blindsr.nets.mrda import MetaLearningNetwork
from blindsr.ops.precision import fp32_region
from blindsr.types import Release, StepOutput, UpscaleFn

__all__ = ["MRDAMetaMethod", "MetaTask"]


class MetaTask(NamedTuple):
    """One MAML task of a meta-step: a support (inner) and a query (outer) set sharing one degradation.

    Attributes:
        support_lr, support_hr: the inner set (Alg. 1 I_tr), LR (k, 3, h, w) and HR.
        query_lr, query_hr: the outer set (Alg. 1 I_te).
        degradation: the task's sampled parameters (one draw for the task with the per-batch MRDA presets).
    """

    support_lr: Tensor
    support_hr: Tensor
    query_lr: Tensor
    query_hr: Tensor
    degradation: DegradationParams


class MRDAMetaMethod:
    """Stage 1b (Alg. 1, docs/specs/mrda.md §4.2): MAML of the MLN; the loop's Adam (lr beta) does the meta-update.

    Networks: ``{"mln": MetaLearningNetwork}``, initialised from the pretrain stage by an ``init:`` entry. With
    ``adapt_upscaler: false`` (default) the Upscaler's parameters are frozen at construction (no gradient, not in
    the optimiser). Validation upscales with the un-adapted meta-init.
    """

    def __init__(self, *, scale: int, degradation: DegradationSpec, options: MRDAMetaOptions) -> None:
        self.scale = check_scale(scale)
        self.degradation = degradation
        self.options = options
        mln = MetaLearningNetwork(**options.mln_kwargs(self.scale))
        if not options.adapt_upscaler:
            mln.upscaler.requires_grad_(False)
        self.networks = nn.ModuleDict({"mln": mln})

    def sample_tasks(self, hr: Tensor, generator: torch.Generator) -> list[MetaTask]:
        """Alg. 1 l. 4, 7: split the HR batch into tasks and degrade each task with its own draw.

        Raises:
            ValueError: a batch that the task split cannot divide.
        """
        o, B = self.options, hr.shape[0]
        tasks = []
        if o.task_split == "disjoint":
            if B % (2 * o.tasks):
                raise ValueError(
                    f"task_split 'disjoint' needs data.batch_size to be a multiple of 2 x tasks = {2 * o.tasks}, "
                    f"got {B}"
                )
            k = B // (2 * o.tasks)
            for i in range(o.tasks):
                chunk = hr[2 * i * k : 2 * (i + 1) * k]
                deg = sample_degradation(self.degradation, 2 * k, generator)
                lr = degrade(chunk, deg, scale=self.scale, generator=generator).lr
                tasks.append(MetaTask(lr[:k], chunk[:k], lr[k:], chunk[k:], deg))
        else:
            if B % 2:
                raise ValueError(f"task_split 'shared' needs an even data.batch_size, got {B}")
            k = B // 2
            for _ in range(o.tasks):
                deg = sample_degradation(self.degradation, B, generator)
                lr = degrade(hr, deg, scale=self.scale, generator=generator).lr
                tasks.append(MetaTask(lr[:k], hr[:k], lr[k:], hr[k:], deg))
        return tasks

    def training_step(
        self, hr: Tensor, *, step: int, generator: torch.Generator, nets: Mapping[str, nn.Module]
    ) -> StepOutput:
        """One meta-step: per task, n inner SGD steps on the support L1, then the query L1 at the adapted weights.

        Returns the mean (or sum) of the query losses; its gradient reaches the meta-weights (first-order: through
        the identity theta_i = theta_M - alpha g, g a constant; second-order: through g as well). The step runs in
        fp32 whatever ``train.precision`` says (docs/training.md, "Precision policy").
        """
        o = self.options
        mln = plain(nets["mln"], why="the MAML stage")
        theta = meta_parameters(mln)
        outer, pre, post = [], [], []
        tasks = self.sample_tasks(hr, generator)
        with fp32_region(hr.device):  # the whole stage is MAML: fp32 under any autocast (blindsr.ops.precision)
            for task in tasks:
                record: dict[str, Tensor] = {}

                def inner_loss(out: Any, target: Tensor = task.support_hr, rec: dict[str, Tensor] = record) -> Tensor:
                    loss = l1(out.sr, target)
                    rec.setdefault("pre", loss.detach())
                    return loss

                adapted = inner_adapt(
                    mln,
                    theta,
                    inner_loss,
                    (task.support_lr,),
                    steps=o.inner_steps,
                    lr=o.step_sizes(),
                    adapt=o.adapts,
                    order=o.order,
                )
                outer.append(l1(functional_call(mln, adapted, (task.query_lr,)).sr, task.query_hr))
                pre.append(record["pre"])
                if o.log_adaptation:
                    with torch.no_grad():
                        post.append(l1(functional_call(mln, adapted, (task.support_lr,)).sr, task.support_hr))
        stacked = torch.stack(outer)
        loss = stacked.mean() if o.outer_reduction == "mean" else stacked.sum()
        logs: dict[str, float | Tensor] = {"query_l1": stacked.detach().mean(), "inner_l1_pre": torch.stack(pre).mean()}
        if post:
            logs["inner_l1_post"] = torch.stack(post).mean()
        return StepOutput(loss=loss, logs=logs)

    def inference(self, nets: Mapping[str, nn.Module]) -> UpscaleFn:
        """The un-adapted meta-init as a plain SR network (monitoring only; the reference's oracle is not used)."""
        return mln_inference(nets, self.scale)

    def release(self) -> Release:
        """What ``blindsr export`` writes: the meta-learned MLN (``mrda_mln``)."""
        return {"mln": ("mrda_mln", self.options.mln_kwargs(self.scale))}
