"""MRDA training stages: the four-stage chain via `fit`, MAML invariants, strict student init, KD warm-up."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor

from blindsr.archs import ARCHS, constructor_kwargs
from blindsr.cli.train import train_method
from blindsr.config import ConfigError, from_dict, load_config
from blindsr.config.schema import ExperimentConfig, InitConfig
from blindsr.degradations import TRAINING_PRESETS, get_training_preset, sample_degradation
from blindsr.engine.checkpoint import CheckpointError
from blindsr.engine.loop import _init_networks
from blindsr.methods import build_method
from blindsr.methods.mrda import (
    MRDAMetaMethod,
    MRDAMetaOptions,
    MRDAPretrainOptions,
    MRDAStudentMethod,
    MRDAStudentOptions,
    MRDATeacherMethod,
    MRDATeacherOptions,
    adapt_mln_features,
    teacher_oracle,
)
from blindsr.nets.mrda import MetaLearningNetwork, MRDAStudent, MRDATeacher

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "mrda"
TINY = CONFIGS / "tiny"
STAGES = ("pretrain", "meta", "teacher", "student")
MLN: dict[str, Any] = {"mln_feats": 8, "mln_body": 2, "inner_steps": 2}
NET: dict[str, Any] = {**MLN, "n_feats": 8, "n_blocks": 2, "idr_dim": 16, "den_channels": 4}


def _cfg(stage: str, *overrides: str) -> ExperimentConfig:
    return load_config(TINY / f"{stage}.yaml", overrides=list(overrides))


def _fit(root: Path, stage: str, *overrides: str, run: str = "") -> Path:
    cfg = _cfg(stage, *overrides)
    run_dir = root / "mrda-tiny" / (run or stage)
    train_method(cfg, build_method(cfg), run_dir=run_dir, config_dir=TINY)
    return run_dir


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pretrain -> meta -> teacher -> student chain, each stage initialised by `from_stage`."""
    root = tmp_path_factory.mktemp("runs")
    for stage in STAGES:
        _fit(root, stage)
    return root / "mrda-tiny"


def _final(run_dir: Path) -> dict[str, Tensor]:
    return load_file(str(run_dir / "final" / "networks.safetensors"))


def _with_prefix(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _loaded(method: Any, stage: str, chain: Path) -> Any:
    """A method built from a tiny stage config, its `init:` entries loaded from the chain's runs (as `fit` does)."""
    _init_networks(method, _cfg(stage).init, chain / stage)
    return method


def _hr(batch: int = 4, seed: int = 0) -> Tensor:
    return torch.rand(batch, 3, 24, 24, generator=torch.Generator().manual_seed(seed))


def _step(method: Any, hr: Tensor, *, step: int = 0, seed: int = 0) -> Any:
    gen = torch.Generator().manual_seed(seed)
    return method.training_step(hr, step=step, generator=gen, nets=dict(method.networks.items()))


def _teacher(chain: Path, **options: Any) -> MRDATeacherMethod:
    method = MRDATeacherMethod(
        scale=2, degradation=get_training_preset("mrda-iso-x2"), options=MRDATeacherOptions(**{**NET, **options})
    )
    return _loaded(method, "teacher", chain)


def test_the_four_stages_chain_and_write_final_weights(chain: Path) -> None:
    for stage in STAGES:
        assert (chain / stage / "final" / "networks.safetensors").is_file(), stage
    assert set(_final(chain / "teacher")) == {f"teacher.{k}" for k in _teacher(chain).networks["teacher"].state_dict()}
    # the student trained past its one-step warm-up, so its RDAN moved away from the teacher's
    student, teacher = _final(chain / "student"), _final(chain / "teacher")
    moved = [
        k
        for k in _with_prefix(teacher, "teacher.rdan.")
        if not torch.equal(teacher[f"teacher.rdan.{k}"], student[f"student.rdan.{k}"])
    ]
    assert moved


def test_meta_stage_leaves_the_frozen_upscaler_unchanged(chain: Path) -> None:
    pre, meta = _final(chain / "pretrain"), _final(chain / "meta")
    ups = [k for k in pre if k.startswith("mln.upscaler.")]
    assert ups and all(torch.equal(pre[k], meta[k]) for k in ups)
    assert not torch.equal(pre["mln.trunk.head.weight"], meta["mln.trunk.head.weight"])
    assert not torch.equal(pre["mln.out.weight"], meta["mln.out.weight"])  # `out` is adapted (paper: 8 convs)

    method = MRDAMetaMethod(
        scale=2, degradation=get_training_preset("mrda-iso-x2"), options=MRDAMetaOptions(**MLN, tasks=2)
    )
    mln = method.networks["mln"]
    assert isinstance(mln, MetaLearningNetwork)
    assert not any(p.requires_grad for p in mln.upscaler.parameters())  # so the optimiser never sees them
    _step(method, _hr()).loss.backward()
    assert all(p.grad is None for p in mln.upscaler.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in mln.trunk.parameters())
    # the reference code's choice: the Upscaler adapted and meta-trained too
    both = MRDAMetaMethod(
        scale=2,
        degradation=get_training_preset("mrda-iso-x2"),
        options=MRDAMetaOptions(**MLN, tasks=2, adapt_upscaler=True, order="second"),
    )
    _step(both, _hr()).loss.backward()
    assert all(p.grad is not None for p in both.networks["mln"].parameters())


def test_meta_tasks_get_their_own_patches_and_degradations() -> None:
    spec = get_training_preset("mrda-iso-x2")
    method = MRDAMetaMethod(scale=2, degradation=spec, options=MRDAMetaOptions(**MLN, tasks=3))
    hr = _hr(12)
    tasks = method.sample_tasks(hr, torch.Generator().manual_seed(0))
    assert len(tasks) == 3
    sigmas = [t.degradation.kernel_sigma for t in tasks]
    assert all(s is not None and torch.equal(s, s[0].expand_as(s)) for s in sigmas)  # one degradation per task
    assert len({float(s[0]) for s in sigmas if s is not None}) == 3  # and a different one in every task
    assert torch.equal(tasks[1].support_hr, hr[4:6]) and torch.equal(tasks[1].query_hr, hr[6:8])
    assert tasks[0].support_lr.shape == (2, 3, 12, 12)
    with pytest.raises(ValueError, match="multiple of 2 x tasks = 6"):
        method.sample_tasks(_hr(8), torch.Generator())
    shared = MRDAMetaMethod(scale=2, degradation=spec, options=MRDAMetaOptions(**MLN, tasks=3, task_split="shared"))
    tasks = shared.sample_tasks(_hr(4), torch.Generator().manual_seed(0))
    assert all(torch.equal(t.support_hr, tasks[0].support_hr) for t in tasks)
    assert not torch.equal(tasks[0].support_lr, tasks[1].support_lr)
    out = _step(shared, _hr(4))
    assert {"query_l1", "inner_l1_pre", "inner_l1_post"} <= set(out.logs)
    assert float(out.logs["inner_l1_post"]) < float(out.logs["inner_l1_pre"])


def test_teacher_step_adapts_afresh_and_leaves_the_meta_weights_untouched(chain: Path) -> None:
    method = _teacher(chain)
    mln = method.mln
    before = {k: v.clone() for k, v in mln.state_dict().items()}
    meta = _with_prefix(_final(chain / "meta"), "mln.")
    assert all(torch.equal(before[k], meta[k]) for k in meta)  # the init filled the frozen member
    assert not any(p.requires_grad for p in mln.parameters()) and "mln" not in method.networks
    hr = _hr()
    out = _step(method, hr)
    out.loss.backward()
    assert all(torch.equal(v, before[k]) for k, v in mln.state_dict().items())
    assert all(p.grad is None for p in mln.parameters())
    assert float(out.logs["adapt_l1_post"]) < float(out.logs["adapt_l1_pre"])
    # a second batch starts from the meta-weights again: the same batch gives the same D′, bit for bit
    lr = torch.rand(4, 3, 12, 12)
    first, _ = method.teacher_features(lr, hr)
    second, _ = method.teacher_features(lr, hr)
    assert torch.equal(first, second) and not torch.equal(first, mln.degradation_features(lr))


def test_legacy_persistent_mln_keeps_the_adapted_weights(chain: Path) -> None:
    method = _teacher(chain, legacy_persistent_mln=True)
    assert method.networks["mln"] is method.mln  # checkpointed with the run
    start = {k: v.clone() for k, v in method.mln.state_dict().items()}
    lr, hr = torch.rand(4, 3, 12, 12), _hr()
    first, _ = method.teacher_features(lr, hr)
    after_one = {k: v.clone() for k, v in method.mln.state_dict().items()}
    second, _ = method.teacher_features(lr, hr)
    assert not torch.equal(after_one["trunk.head.weight"], start["trunk.head.weight"])
    assert not torch.equal(method.mln.trunk.head.weight, after_one["trunk.head.weight"])  # it keeps drifting
    assert all(torch.equal(v, start[k]) for k, v in method.mln.state_dict().items() if k.startswith("upscaler."))
    assert not torch.equal(first, second)


def test_legacy_persistent_mln_resumes_bit_for_bit(chain: Path, tmp_path: Path) -> None:
    root = tmp_path / "mrda-tiny"
    for stage in ("meta",):  # the teacher inits from the sibling stage `meta`
        (root / stage).mkdir(parents=True)
        (root / stage / "final").symlink_to(chain / stage / "final")
    legacy = ["method.options.legacy_persistent_mln=true", "checkpoint.every=1"]
    full = _fit(tmp_path, "teacher", *legacy, run="teacher_full")
    cfg = _cfg("teacher", *legacy)
    part = root / "teacher_part"
    train_method(cfg, build_method(cfg), run_dir=part, config_dir=TINY, stop_after=2)
    train_method(cfg, build_method(cfg), run_dir=part, config_dir=TINY, resume=True)
    a, b = _final(full), _final(part)
    assert a.keys() == b.keys() and any(k.startswith("mln.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["mln.trunk.head.weight"], _final(chain / "meta")["mln.trunk.head.weight"])


def test_student_init_loads_the_teachers_rdan_strictly(chain: Path) -> None:
    cfg = _cfg("student")
    method = _loaded(build_method(cfg), "student", chain)
    teacher = _final(chain / "teacher")
    student = method.networks["student"].state_dict()
    rdan = _with_prefix(teacher, "teacher.rdan.")
    assert rdan and all(torch.equal(student[f"rdan.{k}"], v) for k, v in rdan.items())
    den_t = _with_prefix(teacher, "teacher.den.")
    assert all(torch.equal(v, den_t[k]) for k, v in method.teacher_den.state_dict().items())
    # without `exclude`, DEN_S (3 input channels) cannot take DEN_T's weights (C′ input channels)
    wrong = (InitConfig(network="student", from_stage="teacher", source_network="teacher"),)
    with pytest.raises(CheckpointError, match="strict"):
        _init_networks(build_method(cfg), wrong, chain / "student")
    # a student whose RDAN differs from the teacher's (3 blocks instead of 2) is refused too
    deeper = build_method(_cfg("student", "method.options.n_blocks=3"))
    with pytest.raises(CheckpointError, match="strict"):
        _init_networks(deeper, cfg.init[:1], chain / "student")


def test_kd_warmup_trains_den_s_alone(chain: Path, tmp_path: Path) -> None:
    root = tmp_path / "mrda-tiny"
    for stage in ("meta", "teacher"):
        (root / stage).mkdir(parents=True)
        (root / stage / "final").symlink_to(chain / stage / "final")
    run = _fit(tmp_path, "student", "method.options.kd_warmup_steps=3", run="student_warm")
    teacher, student = _final(chain / "teacher"), _final(run)
    rdan = _with_prefix(teacher, "teacher.rdan.")
    assert all(torch.equal(student[f"student.rdan.{k}"], v) for k, v in rdan.items())
    fresh = build_method(_cfg("student")).networks["student"].state_dict()
    assert not torch.equal(student["student.den.convs.0.weight"], fresh["den.convs.0.weight"])
    # during the warm-up RDAN_S gets no gradient at all (not a zero one: Adam's state stays untouched)
    method = _loaded(build_method(_cfg("student", "method.options.kd_warmup_steps=5")), "student", chain)
    out = _step(method, _hr(), step=4)
    out.loss.backward()
    net = method.networks["student"]
    assert isinstance(net, MRDAStudent) and "l1" not in out.logs and {"kd_kl", "kd_abs"} <= set(out.logs)
    assert all(p.grad is None for p in net.rdan.parameters())
    assert all(p.grad is not None for p in net.den.parameters())
    after = _step(method, _hr(), step=5)
    assert "l1" in after.logs
    expected = after.logs["l1"] + 1.0 * after.logs["kd_kl"] + 0.01 * after.logs["kd_abs"]
    assert float(after.loss.detach()) == pytest.approx(float(expected), rel=1e-6)


def test_without_kd_the_student_needs_no_teacher() -> None:
    """Table V's S6: L_rec alone; no MLN, no DEN_T, no init from the teacher."""
    options = MRDAStudentOptions(**NET, lambda_kl=0.0, lambda_abs=0.0, kd_warmup_steps=0)
    method = MRDAStudentMethod(scale=2, degradation=get_training_preset("mrda-iso-x2"), options=options)
    out = _step(method, _hr())
    assert set(out.logs) == {"l1"} and float(out.loss.detach()) == float(out.logs["l1"])
    with pytest.raises(ValueError, match="needs a KD term"):
        MRDAStudentOptions(lambda_kl=0.0, lambda_abs=0.0)


def test_frozen_members_must_be_loaded() -> None:
    teacher = MRDATeacherMethod(
        scale=2, degradation=get_training_preset("mrda-iso-x2"), options=MRDATeacherOptions(**NET)
    )
    with pytest.raises(RuntimeError, match="never loaded.*from_stage"):
        _step(teacher, _hr())
    student = MRDAStudentMethod(
        scale=2, degradation=get_training_preset("mrda-iso-x2"), options=MRDAStudentOptions(**NET, kd_warmup_steps=0)
    )
    student.mln.load_state_dict(teacher.mln.state_dict())
    with pytest.raises(RuntimeError, match="'teacher_den' was never loaded"):
        _step(student, _hr())


def test_inference_and_release() -> None:
    spec = get_training_preset("mrda-iso-x2")
    teacher = MRDATeacherMethod(scale=2, degradation=spec, options=MRDATeacherOptions(**NET))
    with pytest.raises(NotImplementedError, match="oracle"):
        teacher.inference(dict(teacher.networks.items()))(torch.rand(1, 3, 8, 8), 2)
    for name in STAGES:
        method: Any = build_method(_cfg(name))
        (network, (arch, kwargs)), *rest = method.release().items()
        assert not rest
        assert json.loads(json.dumps(kwargs)) == kwargs  # flat JSON, as a release file stores it
        rebuilt = ARCHS[arch](**constructor_kwargs(arch, kwargs))
        rebuilt.load_state_dict(method.networks[network].state_dict(), strict=True)
        if name != "teacher":
            sr = method.inference(dict(method.networks.items()))(torch.rand(1, 3, 10, 10), 2)
            assert sr.shape == (1, 3, 20, 20)


def test_option_checks() -> None:
    assert MRDATeacherOptions(inner_lr=(1e-2, 5e-3, 5e-3, 5e-3, 5e-3)).step_sizes()[1] == 5e-3
    with pytest.raises(ValueError, match="2 step sizes for inner_steps = 5"):
        MRDATeacherOptions(inner_lr=(1e-2, 5e-3))
    with pytest.raises(ConfigError, match="did you mean 'inner_lr'"):
        build_method(_cfg("teacher", "method.options.inner_rate=0.1"))
    with pytest.raises(ConfigError, match="n_blocks"):  # an RDAN option is no option of the MLN stages
        build_method(_cfg("pretrain", "method.options.n_blocks=3"))
    cfg = _cfg("teacher", "method.options.inner_lr=[0.01, 0.005]")
    assert build_method(cfg).options.step_sizes() == [0.01, 0.005]  # type: ignore[attr-defined]


def _all_configs() -> list[Path]:
    return sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.startswith("_"))


_OPTIONS: dict[str, type[Any]] = {
    "mrda_pretrain": MRDAPretrainOptions,
    "mrda_meta": MRDAMetaOptions,
    "mrda_teacher": MRDATeacherOptions,
    "mrda_student": MRDAStudentOptions,
}
_MLN_FIELDS = ("mln_feats", "mln_body", "mln_skip_border", "mln_skip_quantize")
_RDAN_FIELDS = ("n_feats", "n_blocks", "idr_dim", "kernel_size", "modulation", "kernel", "rdam_channels", "rdam_input")


def _options(cfg: ExperimentConfig) -> Any:
    return from_dict(_OPTIONS[cfg.method.name], cfg.method.options)


def test_configs_load_and_chain_consistently() -> None:
    """Every stage's `from_stage` exists in its experiment, and what it loads was built with the same architecture."""
    stages: dict[tuple[str, str], ExperimentConfig] = {}
    for path in [*_all_configs(), *(TINY / f"{s}.yaml" for s in (*STAGES, "teacher_kernel"))]:
        cfg = load_config(path)
        assert cfg.method.name in _OPTIONS, path
        key = (cfg.experiment, cfg.stage)
        assert key not in stages, f"{path.name}: stage {key} defined twice"
        stages[key] = cfg
    for (experiment, stage), cfg in stages.items():
        where = f"{experiment}/{stage}"
        o = _options(cfg)
        for init in cfg.init:
            if init.from_run:  # an explicit run folder (a resumed run no config describes): nothing to check here
                continue
            assert (experiment, init.from_stage) in stages, f"{where}: no stage {init.from_stage!r}"
            source = stages[(experiment, init.from_stage)]
            so = _options(source)
            same: tuple[str, ...] = _MLN_FIELDS if init.network == "mln" else _RDAN_FIELDS
            if init.network == "teacher_den":
                same = ("idr_dim", "mln_feats")
                assert (o.teacher_den_channels or o.den_channels) == so.den_channels, where
            assert all(getattr(o, f) == getattr(so, f) for f in same), f"{where} vs {source.stage}"
            assert source.method.scale == cfg.method.scale, where
        if cfg.method.name == "mrda_teacher":
            assert cfg.validation.every == 0, f"{where}: the teacher cannot be validated from LR"
        if cfg.method.name == "mrda_meta" and o.task_split == "disjoint":
            assert cfg.data.batch_size % (2 * o.tasks) == 0, where
    paper = stages[("mrda-x4", "iso_x4_student")]
    assert paper.data.batch_size == 64 and paper.data.patch_size == 256 and paper.train.optimizer.lr == 2e-4
    assert stages[("mrda-x4", "aniso_x4_meta")].init[0].from_stage == "iso_x4_pretrain"


@pytest.mark.parametrize("name", [p.name for p in sorted(CONFIGS.glob("*.yaml")) if not p.name.startswith("_")])
def test_every_config_builds(name: str) -> None:
    cfg = load_config(CONFIGS / name)
    assert cfg.degradation.preset in TRAINING_PRESETS
    build_method(cfg)


# ---------------------------------------------------------------- Table V, MRDA_T3: the oracle-kernel teacher

KERNEL_NET: dict[str, Any] = {"n_feats": 8, "n_blocks": 2, "idr_dim": 16, "idr_source": "kernel"}


def _t3(**options: Any) -> MRDATeacherMethod:
    spec = get_training_preset("mrda-iso-x2")
    return MRDATeacherMethod(scale=2, degradation=spec, options=MRDATeacherOptions(**{**KERNEL_NET, **options}))


def test_t3_teacher_reads_the_batchs_true_kernels_and_has_no_mln() -> None:
    method = _t3()
    teacher = method.networks["teacher"]
    assert isinstance(teacher, MRDATeacher) and teacher.blur_encoder is not None and teacher.den is None
    assert set(method.networks) == {"teacher"}
    with pytest.raises(AttributeError, match="no MLN"):
        _ = method.mln
    seen: list[Tensor] = []
    handle = teacher.blur_encoder.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    out = _step(method, _hr(), seed=3)
    handle.remove()
    # the same draws as the paper teacher's step: the kernels are those of the degradation the LR was made with
    deg = sample_degradation(method.degradation, 4, torch.Generator().manual_seed(3))
    assert len(seen) == 1 and torch.equal(seen[0], deg.kernels.to(torch.float32)) and seen[0].shape == (4, 21, 21)
    assert set(out.logs) == {"l1"} and math.isfinite(float(out.loss.detach()))
    out.loss.backward()
    assert all(p.grad is not None for p in teacher.parameters())
    # an init entry for an MLN is refused (before any file is looked for): T3 has none to load
    with pytest.raises(ValueError, match="no network 'mln'"):
        _init_networks(method, (InitConfig(network="mln", from_stage="meta", freeze=True),), Path("/no/run"))
    with pytest.raises(NotImplementedError, match="true blur kernel"):
        method.inference(dict(method.networks.items()))(torch.rand(1, 3, 8, 8), 2)
    with pytest.raises(ValueError, match="legacy_persistent_mln"):
        MRDATeacherOptions(idr_source="kernel", legacy_persistent_mln=True)
    with pytest.raises(ValueError, match="idr_source"):
        MRDATeacherOptions(idr_source="lr")  # type: ignore[arg-type]


def test_t3_loss_falls_on_a_fixed_batch() -> None:
    method = _t3()
    optimizer = torch.optim.Adam(method.networks.parameters(), lr=2e-3)
    hr, losses = _hr(), []
    for _ in range(25):
        out = _step(method, hr, seed=1)  # the same degradation every step
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(float(out.loss.detach()))
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.93 * losses[0]
    assert sum(b < a for a, b in zip(losses, losses[1:], strict=False)) >= 20  # falling, nearly step by step


def test_t3_tiny_config_trains_on_its_own(tmp_path: Path) -> None:
    run = _fit(tmp_path, "teacher_kernel")  # no init entry, no meta stage: nothing else has to exist
    final = _final(run)
    assert any(k.startswith("teacher.blur_encoder.") for k in final)
    assert not any(k.startswith(("teacher.den.", "mln.")) for k in final)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["l1"] for r in log if r["kind"] == "train"]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    method: Any = build_method(_cfg("teacher_kernel"))
    (network, (arch, kwargs)), *rest = method.release().items()
    assert not rest and (network, arch) == ("teacher", "mrda_t")
    assert kwargs["idr_source"] == "kernel" and kwargs["blur_kernel_size"] == 21
    ARCHS[arch](**constructor_kwargs(arch, kwargs)).load_state_dict(_with_prefix(final, "teacher."), strict=True)
    # the paper teacher's release is unchanged (its arch_kwargs must keep matching the model cards)
    paper_kwargs = build_method(_cfg("teacher")).release()["teacher"][1]  # type: ignore[attr-defined]
    assert "idr_source" not in paper_kwargs and "blur_kernel_size" not in paper_kwargs


# ---------------------------------------------------------------- the teacher as an oracle (evaluation)


def _paper_teacher_with_random_mln() -> MRDATeacherMethod:
    method = MRDATeacherMethod(
        scale=2, degradation=get_training_preset("mrda-iso-x2"), options=MRDATeacherOptions(**NET)
    )
    method.mln.load_state_dict(MetaLearningNetwork(**method.options.mln_kwargs(2)).state_dict())  # "the meta stage"
    method.networks.eval()
    return method


def test_teacher_oracle_adapts_the_mln_afresh_on_each_image_and_never_in_place() -> None:
    method = _paper_teacher_with_random_mln()
    nets = dict(method.networks.items())
    upscale = method.oracle(nets)
    before = {k: v.clone() for k, v in method.mln.state_dict().items()}
    g = torch.Generator().manual_seed(5)
    lr, hr_a, hr_b = (
        torch.rand(1, 3, 10, 9, generator=g),
        torch.rand(1, 3, 20, 18, generator=g),
        torch.rand(1, 3, 20, 18),
    )
    kernel = torch.rand(1, 21, 21)
    a1 = upscale(lr, 2, hr_a, kernel)
    b = upscale(lr, 2, hr_b, kernel)
    a2 = upscale(lr, 2, hr_a, kernel)
    assert a1.shape == (1, 3, 20, 18)
    assert torch.equal(a1, a2)  # no carry-over from image b: every call starts from the meta-weights
    assert not torch.equal(a1, b)  # it reads the HR image: an oracle
    assert all(torch.equal(v, before[k]) for k, v in method.mln.state_dict().items())
    assert not any(p.grad is not None for p in method.mln.parameters())
    features, _ = adapt_mln_features(method.mln, lr, hr_a, method.options)  # what the teacher was trained with
    with torch.no_grad():
        torch.testing.assert_close(a1, nets["teacher"](lr, features).sr)
    with torch.inference_mode():  # inference tensors are copied: the adaptation still gets autograd
        a3 = upscale(lr.clone(), 2, hr_a.clone(), kernel.clone())
    torch.testing.assert_close(a3, a1)
    with pytest.raises(ValueError, match="upscales x2"):
        upscale(lr, 4, hr_a, kernel)
    more = method.oracle(nets, options=MRDATeacherOptions(**{**NET, "inner_steps": 4}))
    assert not torch.equal(more(lr, 2, hr_a, kernel), a1)


def test_teacher_oracle_needs_a_loaded_matching_mln_and_t3_needs_none() -> None:
    fresh = MRDATeacherMethod(
        scale=2, degradation=get_training_preset("mrda-iso-x2"), options=MRDATeacherOptions(**NET)
    )
    with pytest.raises(RuntimeError, match="never loaded"):
        fresh.oracle(dict(fresh.networks.items()))
    teacher = fresh.networks["teacher"]
    assert isinstance(teacher, MRDATeacher)
    with pytest.raises(ValueError, match="needs its meta-learned MLN"):
        teacher_oracle(teacher, None)
    with pytest.raises(ValueError, match="does not fit"):
        teacher_oracle(teacher, MetaLearningNetwork(scale=2, n_feats=6, n_body=1))
    t3 = _t3()
    t3.networks.eval()
    upscale = t3.oracle(dict(t3.networks.items()))
    lr, kernel = torch.rand(1, 3, 8, 8), torch.rand(1, 21, 21)
    sr = upscale(lr, 2, torch.rand(1, 3, 16, 16), kernel)
    assert torch.equal(sr, upscale(lr, 2, torch.zeros(1, 3, 16, 16), kernel))  # the HR is not used
    with torch.no_grad():
        assert torch.equal(sr, t3.networks["teacher"](lr, blur_kernels=kernel).sr)
