"""The MLN's per-batch adaptation (Alg. 2 l. 4-10), shared by the teacher stage, the student stage and the oracle.

:func:`adapt_mln_features` adapts the frozen meta-learned MLN to one (LR, HR) batch, functionally, and returns D′.
:class:`AdaptingStage` is what the teacher and student stages share: the frozen MLN member, the check that an
``init:`` entry filled it, and D′_T of a batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from blindsr.methods.meta import inner_adapt, meta_parameters
from blindsr.methods.mrda.options import AdaptationOptions, SRNetOptions
from blindsr.methods.mrda.shared import l1, on_device, single_process
from blindsr.nets.mrda import MetaLearningNetwork
from blindsr.ops.precision import fp32_region
from blindsr.types import Scale

__all__ = ["AdaptingStage", "LoadWatch", "adapt_mln_features"]


def adapt_mln_features(
    mln: MetaLearningNetwork, lr: Tensor, hr: Tensor, options: AdaptationOptions, *, persist: bool = False
) -> tuple[Tensor, dict[str, float | Tensor]]:
    """Alg. 2 l. 4-10: adapt the MLN to one (LR, HR) batch from its current weights and return D′ (detached).

    Adaptation is functional (:func:`~blindsr.methods.meta.inner_adapt`, ``order="none"``): the MLN's own weights
    are the start of every call, so calling this once per batch *is* the per-batch reset to theta_M. Everything
    here runs in fp32 under any autocast (:mod:`blindsr.ops.precision`).

    Args:
        mln: the frozen MLN (meta-weights).
        lr: (B, 3, h, w) the batch's LR images.
        hr: (B, 3, s·h, s·w) their HR images (the teacher is an oracle).
        options: inner steps, step sizes, which parameters adapt, whether to log.
        persist: write the adapted weights back into `mln` (the reference code's drifting MLN, docs/specs/mrda.md §6.1).

    Returns:
        ``(features, logs)``: D′ (B, C′, h, w) without gradient, and ``adapt_l1_pre`` / ``adapt_l1_post`` (the MLN's
        L1 before and after adaptation) when ``options.log_adaptation``.
    """
    record: dict[str, Tensor] = {}

    def inner_loss(out: Any) -> Tensor:
        loss = l1(out.sr, hr)
        record.setdefault("pre", loss.detach())
        return loss

    adapted = inner_adapt(
        mln,
        meta_parameters(mln, detach=True),
        inner_loss,
        (lr,),
        steps=options.inner_steps,
        lr=options.step_sizes(),
        adapt=options.adapts,
        order="none",
    )
    logs: dict[str, float | Tensor] = {}
    with torch.no_grad(), fp32_region(lr.device):  # the adapted weights' update would vanish in bf16
        if options.log_adaptation:
            out = functional_call(mln, adapted, (lr,))
            features = out.features
            logs = {"adapt_l1_pre": record["pre"], "adapt_l1_post": l1(out.sr, hr)}
        else:
            features = mln.degradation_features(lr, params=adapted)
        if persist:
            for name, p in mln.named_parameters():
                p.copy_(adapted[name])
    return features.detach(), logs


class LoadWatch:
    """Remembers which frozen members were filled by ``load_state_dict`` (an ``init:`` entry or a test)."""

    def __init__(self) -> None:
        self.loaded: set[str] = set()

    def watch(self, name: str, module: nn.Module) -> None:
        """Record `name` as loaded when `module` gets a state dict."""

        def hook(_module: nn.Module, _incompatible: Any) -> None:
            self.loaded.add(name)

        module.register_load_state_dict_post_hook(hook)

    def require(self, name: str, from_stage: str) -> None:
        """Refuse to go on with a frozen member no ``init:`` entry filled (it would hold random weights)."""
        if name not in self.loaded:
            raise RuntimeError(
                f"the frozen member {name!r} was never loaded: add "
                f"`init: [{{network: {name}, from_stage: <{from_stage} stage>, freeze: true}}]` to the config"
            )


class AdaptingStage:
    """What the teacher and student stages share: the frozen meta-learned MLN and its per-batch adaptation."""

    scale: Scale
    networks: nn.ModuleDict
    _mln: MetaLearningNetwork | None = None  # None: a stage without MLN (MRDA_T3)
    _watch: LoadWatch
    _adaptation: SRNetOptions

    def _setup_mln(self, options: SRNetOptions) -> None:
        self._adaptation = options
        self._watch = LoadWatch()
        mln = MetaLearningNetwork(**options.mln_kwargs(self.scale)).requires_grad_(False)
        self._mln = mln
        self._watch.watch("mln", mln)
        if options.legacy_persistent_mln:
            self.networks["mln"] = mln  # checkpointed with the run: its drift resumes exactly

    @property
    def mln(self) -> MetaLearningNetwork:
        """The frozen MLN (meta-weights; drifting with ``legacy_persistent_mln``), filled by an ``init:`` entry.

        Raises:
            AttributeError: the stage has no MLN (``idr_source: kernel``), so an ``init:`` entry for it is refused.
        """
        if self._mln is None:
            raise AttributeError("this stage has no MLN (idr_source: kernel, MRDA_T3)")
        return self._mln

    def teacher_features(self, lr: Tensor, hr: Tensor) -> tuple[Tensor, dict[str, float | Tensor]]:
        """D′_T of the batch: a fresh adaptation of the MLN to (lr, hr) (Alg. 2 l. 4-10), detached."""
        mln = self.mln
        self._watch.require("mln", "meta")
        legacy = self._adaptation.legacy_persistent_mln
        if legacy:
            single_process("legacy_persistent_mln")
        on_device(mln, lr.device)
        return adapt_mln_features(mln, lr, hr, self._adaptation, persist=legacy)
