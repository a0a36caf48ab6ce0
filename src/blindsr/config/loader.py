"""Strict YAML loading of the typed configuration (:mod:`blindsr.config.schema`).

The converter is generic: it turns plain mappings into any tree of (frozen) dataclasses, driven by the field type
hints, and rejects anything it does not understand:

* unknown keys are errors that name the closest valid key (``unknown key 'train.optimiser' (did you mean
  'optimizer'?)``); missing required keys are errors;
* ``int`` accepts ints only (not ``bool``, not floats, not strings); ``bool`` accepts booleans only (not ``"yes"``);
  ``str`` accepts strings only;
* ``float`` accepts ints, floats, and strings written as decimal numbers. YAML 1.1 (PyYAML) reads ``1e-4`` and
  ``1.0e3`` as *strings* (its float pattern wants a dot and a signed exponent); the loader here resolves them as
  floats, and the converter still accepts such strings for float fields so that mappings from elsewhere behave the
  same;
* ``tuple[X, ...]`` and fixed-length ``tuple[X, Y]`` come from lists (the length is checked), ``Literal[...]``
  checks membership (with a suggestion), ``X | None`` accepts ``null``, ``dict[K, V]`` comes from a mapping,
  ``Any`` keeps the plain (deep-copied) value, nested dataclasses come from mappings.

Errors are :class:`ConfigError`: one line, prefixed with the file name when known and naming the dotted key path
(list items by index: ``init.0.freeze``), e.g. ``toy.yaml: train.total_steps: expected int, got 'abc'``.

:func:`load_config` reads a YAML file, merges an optional ``base: other.yaml`` (relative to the file; the child
wins, mappings merge recursively), applies ``--set key.path=value`` overrides to the raw mapping, converts it, and
for :class:`~blindsr.config.schema.ExperimentConfig` runs the sanity checks of :func:`check_experiment`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from blindsr.config.schema import ExperimentConfig
from blindsr.files import OutputError, atomic_write_text

__all__ = [
    "ConfigError",
    "apply_overrides",
    "check_experiment",
    "dump_config",
    "from_dict",
    "load_config",
    "parse_override",
    "to_dict",
]

T = TypeVar("T")

_NONE_TYPE = type(None)
_UNION_TYPES: tuple[Any, ...] = (Union, types.UnionType)
# Decimal numbers as written by people: 1, -2.5, .5, 1e-4, 1.0e3, 2E+5 (no inf/nan, no underscores, no hex).
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# Exponent forms that YAML 1.1 leaves as strings (1e-4, 1.0e3, 5E+2); resolved as floats by the loader here.
_YAML_EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")


class ConfigError(ValueError):
    """An invalid configuration. The message is one line: ``[source: ]message``.

    Attributes:
        source: the file (or ``--set ...`` override) the problem came from, ``""`` if unknown.
        path: the dotted key path the problem is about, ``""`` for the whole document.
        detail: the message without the source prefix.
    """

    def __init__(self, detail: str, *, source: str = "", path: str = "") -> None:
        detail = " ".join(detail.split("\n"))
        self.detail = detail
        self.source = source
        self.path = path
        super().__init__(f"{source}: {detail}" if source else detail)

    def with_source(self, source: str) -> ConfigError:
        """The same error attributed to another source."""
        return ConfigError(self.detail, source=source, path=self.path)


# --------------------------------------------------------------------------------------------------- conversion


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(tp: Any) -> str:
    if tp is Any:
        return "any value"
    if tp is _NONE_TYPE:
        return "null"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "a mapping"
    origin = get_origin(tp)
    if origin in _UNION_TYPES:
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(_show(c) for c in get_args(tp))
    if origin in (tuple, list):
        return "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _init_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.init]


def from_dict(cls: type[T], data: Mapping[str, Any], *, path: str = "", source: str = "") -> T:
    """Convert a plain mapping into the dataclass ``cls`` (recursively), strictly.

    Args:
        cls: a dataclass type (typically frozen), whose field annotations drive the conversion.
        data: the mapping (e.g. from YAML); it is not modified.
        path: the dotted key path of ``data`` inside a larger document, for messages.
        source: the file name (or other origin) that prefixes messages.

    Raises:
        ConfigError: on an unknown or missing key, or a value of the wrong type.
        TypeError: if ``cls`` is not a dataclass or uses a field type this converter does not support.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}")
    return typing.cast(T, _convert(cls, data, path, source))


def _convert(tp: Any, value: Any, path: str, source: str) -> Any:
    def fail(detail: str) -> ConfigError:
        return ConfigError(f"{path}: {detail}" if path else detail, source=source, path=path)

    def expected() -> ConfigError:
        return fail(f"expected {_type_name(tp)}, got {_show(value)}")

    if tp is Any or tp is object:
        return copy.deepcopy(value)
    if tp is _NONE_TYPE:
        if value is not None:
            raise expected()
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, path, source)
    if tp is bool:
        if not isinstance(value, bool):
            raise expected()
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise expected()
        return value
    if tp is float:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            return float(value)
        raise expected()
    if tp is str:
        if not isinstance(value, str):
            raise expected()
        return value

    origin, args = get_origin(tp), get_args(tp)
    if origin in _UNION_TYPES:
        if value is None and _NONE_TYPE in args:
            return None
        options = [a for a in args if a is not _NONE_TYPE]
        if len(options) == 1:
            return _convert(options[0], value, path, source)
        for option in options:
            try:
                return _convert(option, value, path, source)
            except ConfigError:
                pass
        raise expected()
    if origin is Literal:
        for choice in args:
            if value == choice and type(value) is type(choice):
                return choice
        hint = _suggest(value, [c for c in args if isinstance(c, str)]) if isinstance(value, str) else ""
        raise fail(f"must be one of {', '.join(_show(c) for c in args)}, got {_show(value)}{hint}")
    if origin in (tuple, list) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise expected()
        if tp in (tuple, list):  # bare: items kept as plain data
            items = [copy.deepcopy(v) for v in value]
        elif origin is list or (len(args) == 2 and args[1] is Ellipsis):
            items = [_convert(args[0], v, _join(path, i), source) for i, v in enumerate(value)]
        else:  # fixed length: tuple[float, float]
            if len(value) != len(args):
                raise fail(f"expected a list of {len(args)} items, got {len(value)}: {_show(value)}")
            items = [_convert(a, v, _join(path, i), source) for i, (a, v) in enumerate(zip(args, value, strict=True))]
        return items if list in (origin, tp) else tuple(items)
    if origin is dict or tp is dict or origin is Mapping:
        if not isinstance(value, Mapping):
            raise expected()
        key_tp, value_tp = args if args else (Any, Any)
        out: dict[Any, Any] = {}
        for k, v in value.items():
            sub = _join(path, k)
            if key_tp is str and not isinstance(k, str):
                raise fail(f"keys must be strings, got {_show(k)}")
            out[_convert(key_tp, k, sub, source)] = _convert(value_tp, v, sub, source)
        return out
    raise TypeError(f"{path or '<root>'}: unsupported field type {tp!r}")


def _convert_dataclass(cls: type, value: Any, path: str, source: str) -> Any:
    if not isinstance(value, Mapping):
        detail = f"expected a mapping, got {_show(value)}"
        raise ConfigError(f"{path}: {detail}" if path else detail, source=source, path=path)
    fields = _init_fields(cls)
    names = [f.name for f in fields]
    for key in value:
        if not isinstance(key, str):
            detail = f"keys must be strings, got {_show(key)}"
            raise ConfigError(f"{path}: {detail}" if path else detail, source=source, path=path)
        if key not in names:
            hint = _suggest(key, names) or f" (valid keys: {', '.join(names)})"
            raise ConfigError(f"unknown key {_join(path, key)!r}{hint}", source=source, path=_join(path, key))
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in fields:
        sub = _join(path, f.name)
        if f.name in value:
            kwargs[f.name] = _convert(hints[f.name], value[f.name], sub, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {sub!r}", source=source, path=sub)
    try:
        return cls(**kwargs)
    except ValueError as err:  # a __post_init__ check
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{path}: {err}" if path else str(err), source=source, path=path) from err


def to_dict(obj: Any) -> Any:
    """The inverse of :func:`from_dict`: dataclasses to dicts, tuples to lists; plain data for ``yaml.safe_dump``.

    ``from_dict(type(x), to_dict(x)) == x`` for any dataclass tree whose free-form (``Any``) values are plain YAML
    data (tuples inside ``Any`` values come back as lists).
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in _init_fields(type(obj))}
    if isinstance(obj, Mapping):
        return {to_dict(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return copy.deepcopy(obj)


# ------------------------------------------------------------------------------------------------------- YAML


@functools.cache
def _loader() -> Any:
    """A ``yaml.SafeLoader`` that rejects duplicate keys and reads ``1e-4``/``1.0e3`` as floats (YAML 1.2 style)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # unhashable: the base class reports it
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML_EXP_FLOAT, list("-+0123456789."))
    return StrictLoader


def _yaml_load(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = " ".join(str(p) for p in (err.context, err.problem) if p)
        raise ConfigError(f"{where}invalid YAML: {what or err}", source=source) from err
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid YAML: {err}", source=source) from err


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"train.optimizer.lr=1e-4"`` into ``(["train", "optimizer", "lr"], 0.0001)``.

    The right-hand side is read as YAML (``=[1, 2]``, ``=true``, ``=null``, ``='quoted'``); an empty one is
    ``None``. Numeric path parts index into lists (``init.0.freeze=true``).

    Raises:
        ConfigError: without ``=``, with an empty key or key part, or with a right-hand side that is not YAML.
    """
    source = f"--set {text}"
    key, sep, rhs = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError("expected KEY=VALUE, e.g. train.optimizer.lr=1e-4", source=source)
    parts = key.split(".")
    if any(not p.strip() for p in parts):
        raise ConfigError(f"empty part in key {key!r}", source=source)
    return [p.strip() for p in parts], _yaml_load(rhs, source)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides to a raw (not yet converted) mapping; returns a new mapping.

    Missing intermediate mappings are created; numeric parts index into existing lists; a value replaces what was
    there (mappings are not merged). Unknown keys are left for the strict conversion to report.

    Raises:
        ConfigError: for a malformed override, an out-of-range list index, or a path through a scalar.
    """
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for text in overrides:
        parts, value = parse_override(text)
        source = f"--set {text}"
        node: Any = out
        for depth, part in enumerate(parts):
            here = ".".join(parts[: depth + 1])
            last = depth == len(parts) - 1
            if isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if not isinstance(node.get(part), (dict, list)):
                        if node.get(part) is not None:
                            raise ConfigError(
                                f"cannot set {'.'.join(parts)!r}: {here!r} is {_show(node[part])}, not a mapping",
                                source=source,
                                path=here,
                            )
                        node[part] = {}
                    node = node[part]
            elif isinstance(node, list):
                if not re.fullmatch(r"[0-9]+", part) or int(part) >= len(node):
                    parent = ".".join(parts[:depth])
                    raise ConfigError(
                        f"cannot set {'.'.join(parts)!r}: {part!r} is not an index into {parent!r} "
                        f"(a list of length {len(node)})",
                        source=source,
                        path=here,
                    )
                if last:
                    node[int(part)] = value
                else:
                    if node[int(part)] is None:
                        node[int(part)] = {}
                    node = node[int(part)]
                    if not isinstance(node, (dict, list)):
                        raise ConfigError(
                            f"cannot set {'.'.join(parts)!r}: {here!r} is {_show(node)}, not a mapping",
                            source=source,
                            path=here,
                        )
    return out


def _read_mapping(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """Read one YAML file, with its ``base:`` chain merged underneath (the ``base`` key removed)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config file: {err.strerror or err}", source=source) from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"not a UTF-8 text file: {err}", source=source) from err
    data = _yaml_load(text, source)
    if data is None:
        raise ConfigError("the file is empty (expected a mapping of config keys)", source=source)
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping of config keys, got {_show(data)}", source=source)
    if "base" not in data:
        return data
    base = data.pop("base")
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"base: expected the path of a YAML file, got {_show(base)}", source=source, path="base")
    base_path = Path(base).expanduser()
    if not base_path.is_absolute():
        base_path = path.parent / base_path
    here = path.resolve()
    if base_path.resolve() in (*chain, here):
        cycle = " -> ".join(str(p) for p in (*chain, here, base_path.resolve()))
        raise ConfigError(f"base: cycle of base files: {cycle}", source=source, path="base")
    return _deep_merge(_read_mapping(base_path, (*chain, here)), data)


def _deep_merge(base: dict[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _override_source(err: ConfigError, overrides: Sequence[str]) -> str | None:
    """The ``--set`` override an error (by its key path) is about, if any (the last one wins, as when applied)."""
    if not err.path:
        return None
    for text in reversed(overrides):
        key = text.partition("=")[0].strip()
        if err.path == key or err.path.startswith(key + ".") or key.startswith(err.path + "."):
            return f"--set {text}"
    return None


@typing.overload
def load_config(path: str | os.PathLike[str], *, overrides: Sequence[str] = ()) -> ExperimentConfig: ...


@typing.overload
def load_config(path: str | os.PathLike[str], *, overrides: Sequence[str] = (), cls: type[T]) -> T: ...


def load_config(path: str | os.PathLike[str], *, overrides: Sequence[str] = (), cls: Any = ExperimentConfig) -> Any:
    """Load a YAML config file into ``cls``: ``base:`` merge, then ``--set`` overrides, then strict conversion.

    For :class:`~blindsr.config.schema.ExperimentConfig`, :func:`check_experiment` runs too.

    Raises:
        ConfigError: for anything wrong with the file, its ``base`` chain, the overrides or the values; errors caused
            by an override name the override instead of the file.
    """
    file = Path(path)
    source = str(path)
    data = apply_overrides(_read_mapping(file, ()), overrides)
    try:
        cfg = from_dict(cls, data, source=source)
        if cls is ExperimentConfig:
            check_experiment(typing.cast(ExperimentConfig, cfg), source=source)
    except ConfigError as err:
        origin = _override_source(err, overrides)
        if origin is None:
            raise
        raise err.with_source(origin) from None
    return cfg


def dump_config(cfg: Any, path: str | os.PathLike[str]) -> None:
    """Write ``cfg`` (a dataclass) as YAML that :func:`load_config` reads back to an equal object; atomically.

    The UTF-8 text goes through :func:`blindsr.files.atomic_write_text` (a temporary sibling renamed onto `path`).

    Raises:
        OSError: the file could not be written (its folder must exist); `path` is left as it was.
    """
    import yaml

    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)
    try:
        atomic_write_text(path, text, create_parent=False)
    except OutputError as error:  # the system's own error, as callers (``blindsr train``) word it themselves
        raise (error.__cause__ if isinstance(error.__cause__, OSError) else error) from None


# ----------------------------------------------------------------------------------------------- sanity checks


def check_experiment(cfg: ExperimentConfig, *, source: str = "") -> None:
    """Cross-field and range checks for an :class:`ExperimentConfig` that types alone cannot express.

    Raises:
        ConfigError: for the first problem found.
    """

    def need(ok: bool, path: str, detail: str) -> None:
        if not ok:
            raise ConfigError(f"{path}: {detail}", source=source, path=path)

    need(cfg.method.scale >= 1, "method.scale", f"must be >= 1, got {cfg.method.scale}")
    need(cfg.data.batch_size >= 1, "data.batch_size", f"must be >= 1, got {cfg.data.batch_size}")
    need(cfg.data.patch_size >= 1, "data.patch_size", f"must be >= 1, got {cfg.data.patch_size}")
    need(
        cfg.data.patch_size % cfg.method.scale == 0,
        "data.patch_size",
        f"the HR patch size must be divisible by the scale (method.scale = {cfg.method.scale}), "
        f"got {cfg.data.patch_size}",
    )
    need(cfg.train.total_steps >= 1, "train.total_steps", f"must be >= 1, got {cfg.train.total_steps}")
    need(cfg.train.accumulate >= 1, "train.accumulate", f"must be >= 1, got {cfg.train.accumulate}")
    need(0.0 <= cfg.train.ema_decay < 1.0, "train.ema_decay", f"must be in [0, 1), got {cfg.train.ema_decay}")
    need(cfg.train.grad_clip >= 0.0, "train.grad_clip", f"must be >= 0 (0 = off), got {cfg.train.grad_clip}")
    need(cfg.checkpoint.every >= 1, "checkpoint.every", f"must be >= 1, got {cfg.checkpoint.every}")
    need(cfg.log.every >= 1, "log.every", f"must be >= 1, got {cfg.log.every}")
    need(cfg.validation.every >= 0, "validation.every", f"must be >= 0 (0 = off), got {cfg.validation.every}")
    for i, init in enumerate(cfg.init):
        sources = [name for name in ("from_stage", "from_run") if getattr(init, name)]
        need(
            len(sources) == 1,
            f"init.{i}",
            "needs exactly one of 'from_stage' or 'from_run', got " + ("both" if sources else "neither"),
        )
