"""MRDA_T evaluated as the oracle it is: the MLN adapted afresh on each test (LR, HR) pair; MRDA_T3: the true blur
kernel. Used by ``blindsr eval --teacher-run`` (through ``MRDATeacherMethod.oracle``) and ``-m TEACHER --mln MLN``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor

from blindsr.methods.mrda.adaptation import adapt_mln_features
from blindsr.methods.mrda.options import AdaptationOptions
from blindsr.methods.mrda.shared import on_device
from blindsr.nets.mrda import MetaLearningNetwork, MRDATeacher

__all__ = ["OracleUpscaleFn", "teacher_oracle"]

OracleUpscaleFn = Callable[[Tensor, int, Tensor, Tensor], Tensor]
"""``upscale(lr, scale, hr, kernel) -> sr``: SR that is also given the HR image (B, 3, s·h, s·w) and the true blur
kernel (B, k, k); the shape of ``blindsr.eval.benchmark.OracleModel.upscale``."""


def teacher_oracle(
    teacher: MRDATeacher, mln: MetaLearningNetwork | None, options: AdaptationOptions | None = None
) -> OracleUpscaleFn:
    """MRDA_T as the oracle it is, for evaluation: ``upscale(lr, scale, hr, kernel) -> sr``.

    The paper's teacher: every call adapts `mln` afresh on its own (lr, hr) pair, functionally from the MLN's own
    (meta) weights and never in place (:func:`~blindsr.methods.mrda.adaptation.adapt_mln_features`), then runs
    DEN_T + RDAN_T on the adapted D′; so the result for an image does not depend on the images before it. MRDA_T3
    (``idr_source="kernel"``): the true blur kernel goes to its BlurKernelEncoder, and `mln`, `options` and `hr` are
    not used.

    Tensors made under ``torch.inference_mode`` are copied first (the adaptation needs autograd); the teacher itself
    runs without gradients.

    Args:
        teacher: MRDA_T, in eval mode.
        mln: the frozen meta-learned MLN of the teacher's training (None for MRDA_T3).
        options: the adaptation: inner steps, step sizes, adapted parameters (the teacher stage's options); None:
            the paper's 5 steps of 1e-2 with the Upscaler fixed.

    Returns:
        ``upscale(lr (B, 3, h, w), scale, hr (B, 3, s·h, s·w), kernel (B, k, k)) -> sr (B, 3, s·h, s·w)``.

    Raises:
        ValueError: the paper's teacher without an MLN, or an MLN whose width is not DEN_T's input.
    """
    if teacher.blur_encoder is None:
        if mln is None:
            raise ValueError("the MRDA teacher (idr_source 'mln') needs its meta-learned MLN")
        assert teacher.den is not None
        if mln.n_feats != teacher.den.in_channels or mln.scale != teacher.scale:
            raise ValueError(
                f"the MLN (x{mln.scale}, {mln.n_feats} channels) does not fit the teacher (x{teacher.scale}, DEN_T "
                f"reads {teacher.den.in_channels} channels)"
            )
    adaptation = replace(options or AdaptationOptions(), log_adaptation=False)

    def upscale(lr: Tensor, scale: int, hr: Tensor, kernel: Tensor) -> Tensor:
        if scale != teacher.scale:
            raise ValueError(f"this MRDA teacher upscales x{teacher.scale}, asked for x{scale}")
        with torch.inference_mode(False):
            lr, hr, kernel = (t.clone() if t.is_inference() else t for t in (lr, hr, kernel))
            if teacher.blur_encoder is not None:
                with torch.no_grad():
                    out: Tensor = teacher(lr, blur_kernels=kernel).sr
                return out
            assert mln is not None
            on_device(mln, lr.device)
            features, _ = adapt_mln_features(mln, lr, hr, adaptation)
            with torch.no_grad():
                out = teacher(lr, features).sr
            return out

    return upscale
