"""Training methods: a literal registry from ``method.name`` to a builder taking the experiment config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from blindsr.config.schema import ExperimentConfig
from blindsr.degradations.spec import DegradationSpec
from blindsr.types import Method


def _training_spec(cfg: ExperimentConfig) -> DegradationSpec:
    from blindsr.degradations.presets import get_training_preset

    spec = get_training_preset(cfg.degradation.preset, per=cfg.degradation.per)
    if cfg.degradation.noise_free_prob is not None:
        spec = spec.with_(noise_free_prob=cfg.degradation.noise_free_prob)
    if cfg.degradation.sigma is not None:
        if spec.kernel != "iso":
            raise ValueError(
                f"degradation.sigma sets an isotropic width range; preset {cfg.degradation.preset!r} has "
                f"{spec.kernel!r} kernels"
            )
        spec = spec.with_(sigma=tuple(float(v) for v in cfg.degradation.sigma))
    return spec


def _build_toy(cfg: ExperimentConfig) -> Method:
    from blindsr.config.loader import from_dict
    from blindsr.methods.toy import ToyOptions, ToySRMethod

    options = from_dict(ToyOptions, cfg.method.options, path="method.options")
    spec = _training_spec(cfg)
    return ToySRMethod(scale=cfg.method.scale, degradation=spec, options=options)


def _build_dmsr(cfg: ExperimentConfig) -> Method:
    from blindsr.config.loader import from_dict
    from blindsr.methods.dmsr import DMSRMethod, DMSROptions

    options = from_dict(DMSROptions, cfg.method.options, path="method.options")
    spec = _training_spec(cfg)
    return DMSRMethod(scale=cfg.method.scale, degradation=spec, options=options)


def _build_mrda(stage: str) -> Callable[[ExperimentConfig], Method]:
    """A builder for one MRDA stage (the ``methods/mrda/`` package): pretrain, meta, teacher or student."""

    def build(cfg: ExperimentConfig) -> Method:
        from blindsr.config.loader import from_dict
        from blindsr.methods import mrda

        stages: dict[str, tuple[Callable[..., Method], type[Any]]] = {
            "pretrain": (mrda.MRDAPretrainMethod, mrda.MRDAPretrainOptions),
            "meta": (mrda.MRDAMetaMethod, mrda.MRDAMetaOptions),
            "teacher": (mrda.MRDATeacherMethod, mrda.MRDATeacherOptions),
            "student": (mrda.MRDAStudentMethod, mrda.MRDAStudentOptions),
        }
        method_cls, options_cls = stages[stage]
        options = from_dict(options_cls, cfg.method.options, path="method.options")
        return method_cls(scale=cfg.method.scale, degradation=_training_spec(cfg), options=options)

    return build


METHODS: Final[Mapping[str, Callable[[ExperimentConfig], Method]]] = {
    "toy": _build_toy,
    "dmsr": _build_dmsr,
    "mrda_pretrain": _build_mrda("pretrain"),  # stage 1a: bicubic pretraining of the MLN
    "mrda_meta": _build_mrda("meta"),  # stage 1b: MAML of the MLN (Alg. 1)
    "mrda_teacher": _build_mrda("teacher"),  # stage 2: DEN_T + RDAN_T with the adapted MLN (Alg. 2)
    "mrda_student": _build_mrda("student"),  # stage 3: DEN_S + RDAN_S with IDR distillation
}


def build_method(cfg: ExperimentConfig) -> Method:
    """The method named by ``cfg.method.name``, built from its config.

    Initial weights are a function of ``cfg.seed`` only (the global RNG is forked, not consumed), so every DDP
    rank and every rerun starts from the same weights.
    """
    if cfg.method.name not in METHODS:
        import difflib

        hits = difflib.get_close_matches(cfg.method.name, list(METHODS), n=1)
        hint = f" (did you mean {hits[0]!r}?)" if hits else ""
        raise KeyError(f"unknown method {cfg.method.name!r}{hint}; known: {', '.join(METHODS)}")
    import torch

    from blindsr.degradations.noise import derive_seed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed("init", cfg.seed))
        return METHODS[cfg.method.name](cfg)


__all__ = ["METHODS", "build_method"]
