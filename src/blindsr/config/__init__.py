"""Experiment configuration: the typed schema and its strict YAML loader.

``blindsr.config.schema`` needs nothing beyond the standard library; PyYAML is imported only when a file is read or
written (by :func:`load_config`, :func:`dump_config` and :func:`parse_override`).
"""

from __future__ import annotations

from blindsr.config.loader import (
    ConfigError,
    apply_overrides,
    check_experiment,
    dump_config,
    from_dict,
    load_config,
    parse_override,
    to_dict,
)
from blindsr.config.schema import (
    CheckpointConfig,
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
)

__all__ = [
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "DegradationConfig",
    "ExperimentConfig",
    "InitConfig",
    "LogConfig",
    "MethodConfig",
    "OptimizerConfig",
    "SchedulerConfig",
    "TrainConfig",
    "ValidationConfig",
    "apply_overrides",
    "check_experiment",
    "dump_config",
    "from_dict",
    "load_config",
    "parse_override",
    "to_dict",
]
