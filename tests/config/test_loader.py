"""The strict config loader: conversion, error messages, overrides, ``base:`` merging, sanity checks, dumping."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from blindsr.config import (
    CheckpointConfig,
    ConfigError,
    DataConfig,
    DegradationConfig,
    ExperimentConfig,
    InitConfig,
    LogConfig,
    MethodConfig,
    OptimizerConfig,
    SchedulerConfig,
    TrainConfig,
    ValidationConfig,
    apply_overrides,
    check_experiment,
    dump_config,
    from_dict,
    load_config,
    parse_override,
    to_dict,
)

TOY = """\
experiment: toy
method: {name: toy, scale: 2, options: {n_feats: 8}}
data: {train: [images/], patch_size: 32, batch_size: 4}
train: {total_steps: 10, optimizer: {lr: 1e-3}}
"""


def _raw() -> dict[str, Any]:
    return {
        "experiment": "toy",
        "method": {"name": "toy", "scale": 2, "options": {"n_feats": 8}},
        "data": {"train": ["images/"], "patch_size": 32, "batch_size": 4},
        "train": {"total_steps": 10, "optimizer": {"lr": 1e-3}},
    }


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return _write(tmp_path, "toy.yaml", TOY)


def _full() -> ExperimentConfig:
    """Every section away from its defaults."""
    return ExperimentConfig(
        experiment="full",
        method=MethodConfig(name="dmsr", scale=3, options={"n_feats": 64, "blocks": [1, 2], "act": {"name": "relu"}}),
        data=DataConfig(
            train=("a/", "b/"), patch_size=48, batch_size=8, augment=False, on_device=True, skip_small=True
        ),
        stage="finetune",
        seed=7,
        degradation=DegradationConfig(preset="dmsr-iso", per="batch"),
        train=TrainConfig(
            total_steps=123,
            device="cuda:1",
            precision="bf16",
            channels_last=True,
            grad_clip=1.5,
            accumulate=2,
            ema_decay=0.999,
            optimizer=OptimizerConfig(name="adamw", lr=1e-5, betas=(0.8, 0.99), weight_decay=1e-2, momentum=0.5),
            scheduler=SchedulerConfig(name="multistep", milestones=(10, 20), gamma=0.1, min_lr=1e-7, warmup_steps=3),
            threads=4,
        ),
        validation=ValidationConfig(
            every=50, preset="dmsr-grid", data_root="/data", datasets=("Set5", "Set14"), max_images=3, metric="ssim"
        ),
        checkpoint=CheckpointConfig(every=25, keep_last=5),
        log=LogConfig(every=5, tensorboard=True, progress=False),
        init=(
            InitConfig(network="g", from_stage="pretrain", freeze=True, key_map={"old.": "new."}),
            InitConfig(network="d", from_run="runs/x", source_network="disc"),
        ),
        runs_root="elsewhere",
    )


def _error(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


# ------------------------------------------------------------------------------------------------ conversion


def test_load_toy(toy: Path) -> None:
    cfg = load_config(toy)
    assert cfg.experiment == "toy"
    assert cfg.method == MethodConfig(name="toy", scale=2, options={"n_feats": 8})
    assert cfg.data.train == ("images/",)
    assert cfg.train.optimizer.lr == pytest.approx(1e-3)
    assert isinstance(cfg.train.optimizer.lr, float)
    assert cfg.train.scheduler == SchedulerConfig()


def test_round_trip_all_sections_non_default() -> None:
    cfg = _full()
    data = to_dict(cfg)
    assert data["data"]["train"] == ["a/", "b/"]
    assert data["init"][0]["key_map"] == {"old.": "new."}
    assert data["train"]["optimizer"]["betas"] == [0.8, 0.99]
    assert from_dict(ExperimentConfig, data) == cfg
    for f in ("degradation", "train", "validation", "checkpoint", "log"):
        assert getattr(cfg, f) != getattr(ExperimentConfig(experiment="x", method=cfg.method, data=cfg.data), f)


def test_dump_then_load_is_equal(tmp_path: Path) -> None:
    cfg = _full()
    out = tmp_path / "resolved.yaml"
    dump_config(cfg, out)
    assert load_config(out) == cfg
    assert [p.name for p in tmp_path.iterdir()] == ["resolved.yaml"]  # no temp file left behind
    text = out.read_text(encoding="utf-8")
    assert text.index("experiment:") < text.index("method:") < text.index("runs_root:")  # field order kept


def test_unknown_key_top_level_and_nested(toy: Path) -> None:
    raw = _raw()
    raw["experimnt"] = "x"
    with pytest.raises(ConfigError) as excinfo:
        from_dict(ExperimentConfig, raw, source="toy.yaml")
    assert _error(excinfo) == "toy.yaml: unknown key 'experimnt' (did you mean 'experiment'?)"

    raw = _raw()
    raw["train"]["optimiser"] = {"lr": 1.0}
    with pytest.raises(ConfigError) as excinfo:
        from_dict(ExperimentConfig, raw, source="toy.yaml")
    assert _error(excinfo) == "toy.yaml: unknown key 'train.optimiser' (did you mean 'optimizer'?)"
    assert excinfo.value.path == "train.optimiser"

    raw = _raw()
    raw["method"]["zzz"] = 1
    with pytest.raises(ConfigError, match=r"unknown key 'method.zzz' \(valid keys: name, scale, options\)"):
        from_dict(ExperimentConfig, raw)


def test_wrong_types() -> None:
    def err(section: str, key: str, value: Any) -> str:
        raw = _raw()
        raw.setdefault(section, {})[key] = value
        with pytest.raises(ConfigError) as excinfo:
            from_dict(ExperimentConfig, raw, source="toy.yaml")
        return _error(excinfo)

    assert err("train", "total_steps", "abc") == "toy.yaml: train.total_steps: expected int, got 'abc'"
    assert err("train", "total_steps", 1.0) == "toy.yaml: train.total_steps: expected int, got 1.0"
    assert err("train", "total_steps", True) == "toy.yaml: train.total_steps: expected int, got True"
    assert err("data", "augment", "yes") == "toy.yaml: data.augment: expected bool, got 'yes'"
    assert err("data", "augment", 1) == "toy.yaml: data.augment: expected bool, got 1"
    assert err("train", "device", 0) == "toy.yaml: train.device: expected str, got 0"
    assert err("train", "precision", "fp23") == (
        "toy.yaml: train.precision: must be one of 'fp32', 'bf16', 'fp16', got 'fp23' (did you mean 'fp32'?)"
    )
    assert err("train", "grad_clip", "abc") == "toy.yaml: train.grad_clip: expected float, got 'abc'"
    assert err("data", "train", "images/") == "toy.yaml: data.train: expected a list, got 'images/'"
    assert err("data", "train", ["a", 3]) == "toy.yaml: data.train.1: expected str, got 3"
    assert err("train", "optimizer", 5) == "toy.yaml: train.optimizer: expected a mapping, got 5"
    assert err("method", "options", [1]) == "toy.yaml: method.options: expected a mapping, got [1]"
    assert err("degradation", "per", "img") == (
        "toy.yaml: degradation.per: must be one of 'image', 'batch', got 'img' (did you mean 'image'?)"
    )

    raw = _raw()
    raw["train"]["optimizer"]["betas"] = [0.9, 0.99, 0.999]
    with pytest.raises(ConfigError) as excinfo:
        from_dict(ExperimentConfig, raw)
    assert _error(excinfo) == "train.optimizer.betas: expected a list of 2 items, got 3: [0.9, 0.99, 0.999]"


def test_float_fields_accept_ints_and_numeric_strings() -> None:
    raw = _raw()
    raw["train"]["optimizer"] = {"lr": "2e-4", "weight_decay": 0, "betas": ["0.5", 1]}
    raw["degradation"] = {"per": None}
    cfg = from_dict(ExperimentConfig, raw)
    assert cfg.train.optimizer.lr == 2e-4
    assert cfg.train.optimizer.weight_decay == 0.0 and isinstance(cfg.train.optimizer.weight_decay, float)
    assert cfg.train.optimizer.betas == (0.5, 1.0)
    assert cfg.degradation.per is None


def test_yaml_exponent_floats_are_floats(tmp_path: Path) -> None:
    path = _write(tmp_path, "e.yaml", TOY.replace("n_feats: 8", "n_feats: 8, lr: 1e-4, big: 1.0e3, s: '1e-4'"))
    options = load_config(path).method.options
    assert options == {"n_feats": 8, "lr": 1e-4, "big": 1000.0, "s": "1e-4"}


def test_missing_required_key() -> None:
    raw = _raw()
    del raw["data"]["train"]
    with pytest.raises(ConfigError) as excinfo:
        from_dict(ExperimentConfig, raw, source="toy.yaml")
    assert _error(excinfo) == "toy.yaml: missing required key 'data.train'"
    raw = _raw()
    del raw["method"]
    with pytest.raises(ConfigError, match=r"^missing required key 'method'$"):
        from_dict(ExperimentConfig, raw)


@dataclass(frozen=True)
class _Leaf:
    kind: Literal["a", "b"] = "a"
    weight: float | None = None


@dataclass(frozen=True)
class _Tree:
    name: str
    leaves: tuple[_Leaf, ...] = ()
    pair: tuple[int, str] = (0, "")
    tags: dict[str, int] = field(default_factory=dict)
    extra: list[Any] = field(default_factory=list)


def test_generic_dataclass_tree() -> None:
    tree = from_dict(
        _Tree, {"name": "t", "leaves": [{"kind": "b", "weight": 2}, {}], "pair": [1, "x"], "tags": {"k": 3}}
    )
    assert tree == _Tree("t", (_Leaf("b", 2.0), _Leaf()), (1, "x"), {"k": 3})
    assert from_dict(_Tree, to_dict(tree)) == tree
    with pytest.raises(ConfigError, match=r"^leaves.1.kind: must be one of 'a', 'b', got 'c'$"):
        from_dict(_Tree, {"name": "t", "leaves": [{}, {"kind": "c"}]})
    with pytest.raises(ConfigError, match=r"^tags.k: expected int, got 'x'$"):
        from_dict(_Tree, {"name": "t", "tags": {"k": "x"}})
    with pytest.raises(ConfigError, match=r"^pair.0: expected int, got 'x'$"):
        from_dict(_Tree, {"name": "t", "pair": ["x", "y"]})
    with pytest.raises(TypeError):
        from_dict(dict, {})


def test_free_form_options_are_copied() -> None:
    raw = _raw()
    cfg = from_dict(ExperimentConfig, raw)
    raw["method"]["options"]["n_feats"] = 99
    assert cfg.method.options == {"n_feats": 8}


# ------------------------------------------------------------------------------------------------- overrides


def test_parse_override() -> None:
    assert parse_override("train.optimizer.lr=1e-4") == (["train", "optimizer", "lr"], 1e-4)
    assert parse_override("data.train=[a, b]") == (["data", "train"], ["a", "b"])
    assert parse_override("data.augment=true") == (["data", "augment"], True)
    assert parse_override("degradation.per=null") == (["degradation", "per"], None)
    assert parse_override("experiment='1=2'") == (["experiment"], "1=2")
    for bad in ("train.optimizer.lr", "=3", "train..lr=1"):
        with pytest.raises(ConfigError):
            parse_override(bad)
    with pytest.raises(ConfigError) as excinfo:
        parse_override("train.lr")
    assert _error(excinfo) == "--set train.lr: expected KEY=VALUE, e.g. train.optimizer.lr=1e-4"
    with pytest.raises(ConfigError, match=r"line 1, column \d+: invalid YAML"):
        parse_override("data.train=[a, b")


def test_apply_overrides() -> None:
    raw = _raw()
    raw["init"] = [{"network": "g", "from_stage": "a"}]
    out = apply_overrides(
        raw,
        [
            "train.optimizer.lr=5e-4",
            "init.0.freeze=true",
            "validation.every=20",  # creates the mapping
            "train.scheduler.milestones=[5, 8]",
            "data.train.0=hr/",
        ],
    )
    assert raw["train"]["optimizer"]["lr"] == 1e-3 and "validation" not in raw  # input untouched
    cfg = from_dict(ExperimentConfig, out)
    assert cfg.train.optimizer.lr == 5e-4
    assert cfg.init[0].freeze is True
    assert cfg.validation.every == 20
    assert cfg.train.scheduler.milestones == (5, 8)
    assert cfg.data.train == ("hr/",)

    with pytest.raises(ConfigError, match=r"'5' is not an index into 'data.train' \(a list of length 1\)"):
        apply_overrides(raw, ["data.train.5=x"])
    with pytest.raises(ConfigError, match=r"'experiment' is 'toy', not a mapping"):
        apply_overrides(raw, ["experiment.name=x"])


def test_overrides_through_load_config(toy: Path) -> None:
    cfg = load_config(toy, overrides=["train.total_steps=99", "method.options.n_feats=16", "seed=3"])
    assert (cfg.train.total_steps, cfg.method.options["n_feats"], cfg.seed) == (99, 16, 3)

    with pytest.raises(ConfigError) as excinfo:
        load_config(toy, overrides=["train.optimiser.lr=1"])
    assert _error(excinfo) == "--set train.optimiser.lr=1: unknown key 'train.optimiser' (did you mean 'optimizer'?)"
    with pytest.raises(ConfigError) as excinfo:
        load_config(toy, overrides=["train.total_steps=ten"])
    assert _error(excinfo) == "--set train.total_steps=ten: train.total_steps: expected int, got 'ten'"
    with pytest.raises(ConfigError, match=r"^--set train.total_steps: expected KEY=VALUE"):
        load_config(toy, overrides=["train.total_steps"])


# ------------------------------------------------------------------------------------------------ files, base


def test_base_merge(tmp_path: Path) -> None:
    _write(tmp_path, "base.yaml", TOY + "seed: 5\nvalidation: {every: 100, datasets: [Set5, Set14]}\n")
    (tmp_path / "sub").mkdir()
    child = _write(
        tmp_path / "sub",
        "child.yaml",
        "base: ../base.yaml\nstage: finetune\ntrain: {total_steps: 20}\nvalidation: {datasets: [Urban100]}\n",
    )
    cfg = load_config(child)
    assert cfg.stage == "finetune" and cfg.seed == 5 and cfg.experiment == "toy"
    assert cfg.train.total_steps == 20
    assert cfg.train.optimizer.lr == 1e-3  # merged from the base's train mapping
    assert cfg.validation.every == 100 and cfg.validation.datasets == ("Urban100",)  # lists are replaced

    grandchild = _write(tmp_path, "gc.yaml", "base: sub/child.yaml\nseed: 9\n")
    cfg = load_config(grandchild, overrides=["stage=x"])
    assert (cfg.seed, cfg.stage, cfg.train.total_steps) == (9, "x", 20)


def test_base_cycle_and_missing(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", "base: b.yaml\nexperiment: a\n")
    _write(tmp_path, "b.yaml", "base: a.yaml\nseed: 1\n")
    with pytest.raises(ConfigError, match=r"cycle of base files: .*a\.yaml -> .*b\.yaml -> .*a\.yaml$"):
        load_config(a)
    selfref = _write(tmp_path, "self.yaml", "base: self.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(selfref)
    orphan = _write(tmp_path, "orphan.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: cannot read config file"):
        load_config(orphan)
    bad = _write(tmp_path, "bad.yaml", "base: [a.yaml]\n")
    with pytest.raises(ConfigError, match=r"base: expected the path of a YAML file"):
        load_config(bad)


def test_yaml_syntax_error_reports_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.yaml", TOY + "train: {total_steps: 10\nlog: {every: 1}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    message = _error(excinfo)
    assert message.startswith(f"{path}: line ")
    assert "invalid YAML" in message
    assert int(message.split("line ")[1].split(",")[0]) in (5, 6)


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "dup.yaml", TOY + "experiment: again\n")
    with pytest.raises(ConfigError, match=r"line 5, column 1: invalid YAML: duplicate key 'experiment'"):
        load_config(path)


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"empty\.yaml: the file is empty"):
        load_config(_write(tmp_path, "empty.yaml", "# nothing here\n"))
    with pytest.raises(ConfigError, match=r"list\.yaml: the top level must be a mapping"):
        load_config(_write(tmp_path, "list.yaml", "- a\n- b\n"))
    with pytest.raises(ConfigError, match=r"cannot read config file"):
        load_config(tmp_path / "missing.yaml")


def test_error_names_the_file(toy: Path) -> None:
    toy.write_text(TOY.replace("total_steps: 10", "total_step: 10"), encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_config(toy)
    assert _error(excinfo) == f"{toy}: unknown key 'train.total_step' (did you mean 'total_steps'?)"
    assert excinfo.value.source == str(toy)


# --------------------------------------------------------------------------------------------- sanity checks


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.patch_size=33", "data.patch_size: the HR patch size must be divisible by the scale"),
        ("method.scale=3", "data.patch_size: the HR patch size must be divisible by the scale (method.scale = 3)"),
        ("method.scale=0", "method.scale: must be >= 1, got 0"),
        ("train.total_steps=0", "train.total_steps: must be >= 1, got 0"),
        ("data.batch_size=0", "data.batch_size: must be >= 1, got 0"),
        ("train.accumulate=0", "train.accumulate: must be >= 1, got 0"),
        ("train.ema_decay=1", "train.ema_decay: must be in [0, 1), got 1.0"),
        ("train.ema_decay=-0.1", "train.ema_decay: must be in [0, 1), got -0.1"),
        ("train.grad_clip=-1", "train.grad_clip: must be >= 0 (0 = off), got -1.0"),
        ("checkpoint.every=0", "checkpoint.every: must be >= 1, got 0"),
        ("log.every=0", "log.every: must be >= 1, got 0"),
        ("validation.every=-1", "validation.every: must be >= 0 (0 = off), got -1"),
        ("init=[{network: g, from_stage: a, from_run: b}]", "init.0: needs exactly one of"),
        ("init=[{network: g, from_stage: a}, {network: d}]", "init.1: needs exactly one of"),
    ],
)
def test_check_experiment_failures(toy: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(toy, overrides=[override])
    assert message in _error(excinfo)


def test_check_experiment_messages() -> None:
    base = from_dict(ExperimentConfig, _raw())
    check_experiment(base)  # valid
    both = from_dict(ExperimentConfig, {**_raw(), "init": [{"network": "g", "from_stage": "a", "from_run": "r"}]})
    with pytest.raises(ConfigError) as excinfo:
        check_experiment(both, source="toy.yaml")
    assert _error(excinfo) == "toy.yaml: init.0: needs exactly one of 'from_stage' or 'from_run', got both"
    neither = from_dict(ExperimentConfig, {**_raw(), "init": [{"network": "g"}]})
    with pytest.raises(ConfigError, match="got neither$"):
        check_experiment(neither)
    odd = from_dict(ExperimentConfig, {**_raw(), "data": {"train": ["x"], "patch_size": 33}})
    with pytest.raises(ConfigError) as excinfo:
        check_experiment(odd)
    assert _error(excinfo) == (
        "data.patch_size: the HR patch size must be divisible by the scale (method.scale = 2), got 33"
    )


def test_load_config_other_class_skips_experiment_checks(tmp_path: Path) -> None:
    path = _write(tmp_path, "ck.yaml", "every: 0\n")
    assert load_config(path, cls=CheckpointConfig) == CheckpointConfig(every=0)


def test_schema_import_does_not_need_yaml() -> None:
    code = "import sys, blindsr.config; print('yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
