"""Release files: write self-describing safetensors, and load a model by card name or by path. Never downloads.

A release file is a network's state dict (fp16 floating tensors by default) with string metadata::

    format          "blindsr-model"
    blindsr_version the version that wrote it
    arch            key into blindsr.archs.ARCHITECTURES
    arch_kwargs     JSON object: the constructor's keyword arguments, flat (the architecture's
                    ``constructor_kwargs`` gathers MRDA's RDAN fields into the ``RDANOptions`` its constructors take)
    scale           the upscaling factor
    card            the card name it was exported for, or ""
    ...             extras (``blindsr export`` adds run_dir, config_sha256, step, network, ema)

so ``load_model("runs/.../m.safetensors")`` rebuilds the network from ``arch`` and ``arch_kwargs`` (its descriptor's
``build``) and loads it strictly, without
a card. ``load_model("dmsr-x4")`` finds the card, the file (``blindsr/zoo/weights/`` in the package, then
``$BLINDSR_HOME/weights/``; ``BLINDSR_HOME`` defaults to ``~/.cache/blindsr``), checks its sha256, and loads it
the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import torch
from torch import Tensor, nn

from blindsr.archs import ARCHITECTURES
from blindsr.ops.checks import check_image_batch
from blindsr.version import __version__
from blindsr.zoo import cards as _cards
from blindsr.zoo.card import ModelCard, parse_model_name

__all__ = [
    "FORMAT",
    "LoadedModel",
    "WeightsError",
    "list_models",
    "load_model",
    "parameter_counts",
    "read_release_metadata",
    "resolve_weights",
    "save_release",
    "sha256_file",
    "weights_search_dirs",
]

FORMAT = "blindsr-model"
_RESERVED = ("format", "blindsr_version", "arch", "arch_kwargs", "scale", "card")
_PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"
_DEFAULT_HOME = "~/.cache/blindsr"


class WeightsError(ValueError):
    """A weights file cannot be used: not a blindsr release, wrong checksum, or not matching its architecture."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_search_dirs() -> list[Path]:
    """Where card weights are looked for, in order: the package's ``zoo/weights/``, then ``$BLINDSR_HOME/weights``."""
    home = os.environ.get("BLINDSR_HOME") or _DEFAULT_HOME
    return [_PACKAGE_WEIGHTS, Path(home).expanduser() / "weights"]


def resolve_weights(card: ModelCard) -> Path:
    """The local weights file of a card.

    Raises:
        FileNotFoundError: the file is in none of :func:`weights_search_dirs` (the message lists them).
    """
    dirs = weights_search_dirs()
    for folder in dirs:
        candidate = folder / card.weights
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(d) for d in dirs)
    raise FileNotFoundError(
        f"weights {card.weights!r} of model {card.name!r} not found (looked in {looked}); blindsr never downloads "
        "weights: put the file in one of those folders, or pass its path instead of the name"
    )


# --------------------------------------------------------------------------------------------------------------
# building architectures


@contextlib.contextmanager
def _no_rng_side_effects() -> Iterator[None]:
    # random initialisation of a network that is about to be overwritten must not move the caller's global RNG
    with torch.random.fork_rng(devices=[]):
        yield


MAX_PARAMETERS: Final = 200_000_000
"""Largest network a model file may describe (800 MB in float32; the papers' largest has about 16 M). Checked on
the meta device before anything is allocated, so a file with absurd ``arch_kwargs`` cannot ask for gigabytes."""


def _build(arch: str, arch_kwargs: Mapping[str, Any], *, meta: bool = False) -> nn.Module:
    """``ARCHITECTURES[arch].build(arch_kwargs)``, validated first on the meta device (no memory, no init cost): the
    constructor's own argument checks and :data:`MAX_PARAMETERS`. Returns the meta-device module when `meta`.

    Raises:
        WeightsError: unknown architecture, arguments the constructor refuses, or a network above the size limit.
    """
    architecture = ARCHITECTURES.get(arch)
    if architecture is None:
        raise WeightsError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)}); is blindsr up to date?")
    try:
        with _no_rng_side_effects():
            with torch.device("meta"):
                skeleton = architecture.build(arch_kwargs)
            n_params = sum(p.numel() for p in skeleton.parameters())
            if n_params > MAX_PARAMETERS:
                raise WeightsError(
                    f"{arch}(**{dict(arch_kwargs)}) would have {n_params:,} parameters, above the limit of "
                    f"{MAX_PARAMETERS:,}; the file's arch_kwargs are damaged or not meant for this tool"
                )
            return skeleton if meta else architecture.build(arch_kwargs)
    except (TypeError, ValueError, RuntimeError) as e:
        if isinstance(e, WeightsError):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"cannot build {arch!r} with arch_kwargs {dict(arch_kwargs)}: {first}") from e


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Parameters per component: ``model.parameter_counts()`` when the network defines it, else ``{"total": n}``."""
    counts = getattr(model, "parameter_counts", None)
    if callable(counts):
        return {str(k): int(v) for k, v in counts().items()}
    return {"total": sum(p.numel() for p in model.parameters())}


# --------------------------------------------------------------------------------------------------------------
# writing


def _normalised_kwargs(arch_kwargs: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(arch_kwargs), sort_keys=True)
    except TypeError as e:
        raise ValueError(f"arch_kwargs must be JSON-serialisable (numbers, strings, lists): {e}") from e


def save_release(
    module: nn.Module,
    path: str | os.PathLike[str],
    *,
    arch: str,
    arch_kwargs: Mapping[str, Any],
    scale: int,
    card: str | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
    half: bool = True,
) -> str:
    """Write `module`'s weights as a self-describing release file, atomically (temporary file + rename).

    The state dict must match the network `arch` and `arch_kwargs` build key for key and shape for shape (checked before
    writing, on the meta device), so every file written here loads with :func:`load_model`.

    Args:
        module: the trained network.
        path: the ``.safetensors`` file to write; its own folder is created (not more: see blindsr.files).
        arch: key into :data:`blindsr.archs.ARCHITECTURES`.
        arch_kwargs: the constructor's keyword arguments as stored, flat and JSON-serialisable (the descriptor's
            ``constructor_kwargs`` turns them into the constructor's, e.g. MRDA's ``RDANOptions``).
        scale: the upscaling factor (must equal ``arch_kwargs["scale"]`` when present).
        card: the card name the file is exported for (``<method>[-<role>]-x<scale>[.<tag>]``), or None.
        extra_metadata: more string metadata (values are converted with ``str``); may not override the reserved
            keys ``format, blindsr_version, arch, arch_kwargs, scale, card``.
        half: store floating tensors as float16 (integer buffers are kept as they are).

    Returns:
        The sha256 of the written file (what a card's ``sha256`` must say). The bytes are canonical (sorted
        header), so exporting the same weights with the same metadata again gives the same sha256.

    Raises:
        ValueError: bad arguments, or a state dict that does not match the architecture.
        blindsr.files.OutputError: the file cannot be written (a ValueError; nothing is left behind).
    """
    from safetensors.torch import save

    from blindsr.files import atomic_write_bytes

    kwargs_json = _normalised_kwargs(arch_kwargs)
    if arch_kwargs.get("scale", scale) != scale:
        raise ValueError(f"scale={scale} but arch_kwargs['scale']={arch_kwargs['scale']}")
    if card:
        parsed = parse_model_name(card)
        if parsed.scale != scale:
            raise ValueError(f"card name {card!r} says x{parsed.scale} but the model upscales x{scale}")
    extra = {str(k): str(v) for k, v in (extra_metadata or {}).items()}
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ValueError(f"extra_metadata may not set the reserved keys {clash}")

    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    reference = _build(arch, json.loads(kwargs_json), meta=True).state_dict()
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    wrong = sorted(k for k in set(reference) & set(state) if reference[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"the module does not match {arch}(**{json.loads(kwargs_json)}): missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}"
        )
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    metadata = {
        "format": FORMAT,
        "blindsr_version": __version__,
        "arch": arch,
        "arch_kwargs": kwargs_json,
        "scale": str(scale),
        "card": card or "",
        **extra,
    }
    data = _canonical_safetensors(save(state, metadata=metadata))
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def _canonical_safetensors(data: bytes) -> bytes:
    """Rewrite a safetensors header with sorted keys, so equal weights and metadata give equal bytes (and sha256).

    safetensors writes its header from a hash map, whose order changes from run to run. The layout is an 8-byte
    little-endian header length, the JSON header (padded with spaces to a multiple of 8), then the tensor data;
    data offsets are relative to the end of the header, so only the header is rewritten.
    """
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + n :]


# --------------------------------------------------------------------------------------------------------------
# reading


@dataclass(frozen=True, slots=True)
class _ReleaseInfo:
    arch: str
    arch_kwargs: dict[str, Any]
    scale: int
    metadata: dict[str, str]


def read_release_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The string metadata of a release file, checked to be a blindsr release.

    Raises:
        FileNotFoundError: no such file.
        WeightsError: not a safetensors file, or not written by :func:`save_release`.
    """
    return _read_info(Path(path)).metadata


def _read_info(path: Path) -> _ReleaseInfo:
    from safetensors import safe_open

    if path.is_dir():
        hint = (
            f"; a training run? export it with `blindsr export {path} -o FILE`"
            if (path / "config.yaml").is_file()
            else ""
        )
        raise WeightsError(f"{path} is a folder, not a model file (give a .safetensors file or a zoo name){hint}")
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        with path.open("rb") as fh:
            head = fh.read(2)
        if head == b"PK" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
            raise WeightsError(  # torch.save's zip archive, or a bare pickle: never unpickled here
                f"{path} is a pickled PyTorch checkpoint (.pth/.pt), which blindsr never unpickles: it loads its own "
                "safetensors release files (`blindsr export RUN_DIR -o FILE`, or a zoo name from `blindsr models`)"
            ) from e
        raise WeightsError(f"{path} is not a readable safetensors file: {e}") from e
    if metadata.get("format") != FORMAT:
        raise WeightsError(
            f"{path} is not a blindsr model file (its safetensors metadata has no format={FORMAT!r}); "
            "turn a training run into one with `blindsr export RUN_DIR -o FILE`"
        )
    try:
        arch = metadata["arch"]
        arch_kwargs = json.loads(metadata["arch_kwargs"])
        scale = int(metadata["scale"])
    except (KeyError, ValueError) as e:
        raise WeightsError(f"{path}: incomplete blindsr metadata ({type(e).__name__}: {e})") from e
    if not isinstance(arch_kwargs, dict):
        raise WeightsError(f"{path}: arch_kwargs metadata is not a JSON object")
    if "scale" in arch_kwargs and arch_kwargs["scale"] != scale:
        raise WeightsError(
            f"{path}: its metadata says scale {scale} but the network (arch_kwargs) upscales x{arch_kwargs['scale']}; "
            "the file is damaged or was edited: re-export it with `blindsr export`"
        )
    if not 1 <= scale <= 8:
        raise WeightsError(f"{path}: metadata scale {scale} is not a super-resolution factor (1..8)")
    return _ReleaseInfo(arch=arch, arch_kwargs=arch_kwargs, scale=scale, metadata=metadata)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model loaded by :func:`load_model`, with what it is.

    Attributes:
        model: the network, in eval mode, on the requested device and dtype.
        arch: its :data:`blindsr.archs.ARCHITECTURES` key.
        arch_kwargs: the constructor's keyword arguments (read-only).
        scale: the upscaling factor.
        card: the card it was loaded by, or None when loaded by path.
        path: the weights file.
        metadata: the file's safetensors metadata (``run_dir``, ``step``, ``config_sha256`` for exports).
    """

    model: nn.Module
    arch: str
    arch_kwargs: Mapping[str, Any] = field(hash=False)
    scale: int
    card: ModelCard | None
    path: Path
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)

    def upscale(self, lr: Tensor, scale: int) -> Tensor:
        """Super-resolve a batch without gradients (an ``UpscaleFn``, usable by the evaluation runner).

        Args:
            lr: (B, 3, h, w) float RGB in [0, 1]; moved to the model's device and dtype.
            scale: must equal :attr:`scale`.

        Returns:
            (B, 3, h * scale, w * scale): the network's ``.sr`` when its output has one (DMSR returns kernel and
            noise estimates too), else its output.

        Raises:
            ValueError: `scale` is not the model's scale, or `lr` is not a (B, 3, h, w) batch.
        """
        if scale != self.scale:
            name = self.card.name if self.card is not None else self.path.name
            raise ValueError(f"model {name} upscales x{self.scale}, asked for x{scale}")
        check_image_batch(lr, name="lr", channels=3)
        param = next(self.model.parameters(), None)
        if param is not None:
            lr = lr.to(device=param.device, dtype=param.dtype)
        with torch.no_grad():
            out = self.model(lr)
        sr = getattr(out, "sr", out)
        if not isinstance(sr, Tensor):
            raise TypeError(f"{self.arch} returned {type(out).__name__}, which is neither a tensor nor has .sr")
        return sr

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per component (``{"extractor": ..., "sr": ..., "total": ...}``), or ``{"total": n}``."""
        return parameter_counts(self.model)


def _is_path(name_or_path: str | os.PathLike[str]) -> bool:
    if not isinstance(name_or_path, str):
        return True
    return (
        name_or_path.endswith(".safetensors")
        or "/" in name_or_path
        or os.sep in name_or_path
        or Path(name_or_path).is_file()
        or Path(name_or_path).is_dir()
    )


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """Load a released model by card name (``"dmsr-x4"``) or from a release file path. Never downloads.

    Args:
        name_or_path: a card name (see ``blindsr models``), or a ``.safetensors`` file written by
            :func:`save_release` / ``blindsr export``.
        device: where to put the model.
        dtype: floating dtype of the parameters (the file's fp16 weights are cast).

    Returns:
        The model in eval mode, with its architecture, scale, card and path.

    Raises:
        KeyError: unknown name (the message suggests close names).
        FileNotFoundError: the file (or the card's file) is missing.
        WeightsError: not a blindsr release file, sha256 mismatch with the card, or weights that do not match the
            architecture (strict load: missing, unexpected or wrongly shaped tensors).
    """
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    card: ModelCard | None = None
    if _is_path(name_or_path):
        path = Path(name_or_path)
    else:
        card = _cards.get_card(str(name_or_path))
        path = resolve_weights(card)
        actual = sha256_file(path)
        if actual != card.sha256:
            raise WeightsError(
                f"{path}: sha256 {actual} does not match model card {card.name!r} ({card.sha256}); the file is "
                "damaged or from another release: replace it with the released file"
            )
    info = _read_info(path)
    if card is not None and (
        info.arch != card.arch or _normalised_kwargs(info.arch_kwargs) != _normalised_kwargs(card.arch_kwargs)
    ):
        raise WeightsError(
            f"{path} holds {info.arch}(**{info.arch_kwargs}) but card {card.name!r} says "
            f"{card.arch}(**{dict(card.arch_kwargs)})"
        )
    model = _build(info.arch, info.arch_kwargs)
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors' own errors for truncated data
        raise WeightsError(f"{path} is not a readable safetensors file: {e}") from e
    _check_dtypes(path, state, model)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise WeightsError(
            f"{path}: weights do not match {info.arch}(**{info.arch_kwargs}) (strict load): {' '.join(lines[:3])}"
        ) from e
    model = model.to(device=device, dtype=dtype).eval()
    return LoadedModel(
        model=model,
        arch=info.arch,
        arch_kwargs=MappingProxyType(dict(info.arch_kwargs)),
        scale=info.scale,
        card=card,
        path=path,
        metadata=MappingProxyType(info.metadata),
    )


_WEIGHT_DTYPES: Final = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_dtypes(path: Path, state: Mapping[str, Tensor], model: nn.Module) -> None:
    """Refuse tensors whose dtype the architecture cannot use: a floating parameter stored as int8 (say) would be
    cast silently by ``load_state_dict`` and give black images; an integer buffer must stay an integer."""
    expected = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for key, tensor in state.items():
        want = expected.get(key)
        if want is None:
            continue  # the strict load reports unexpected keys
        if want.is_floating_point() and tensor.dtype not in _WEIGHT_DTYPES:
            raise WeightsError(
                f"{path}: tensor {key!r} is {tensor.dtype}, but the architecture needs floating weights "
                "(float16, bfloat16 or float32); quantised files are not supported"
            )
        if not want.is_floating_point() and tensor.is_floating_point():
            raise WeightsError(f"{path}: tensor {key!r} is {tensor.dtype}, but the architecture stores {want.dtype}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise WeightsError(f"{path}: tensor {key!r} holds NaN or infinite values; the file is damaged")


def list_models() -> list[dict[str, Any]]:
    """Every card as a plain dict, for ``blindsr models``.

    Returns:
        One dict per card, in listing order: ``name``, ``aliases`` (names that resolve to it), ``arch``,
        ``arch_kwargs``, ``scale``, ``params`` (per component, counted on a weightless instance), ``description``,
        ``trained``, ``degradation``, ``train_config``, ``paper``, ``license``, ``weights``, ``sha256`` and
        ``available`` (whether the weights file is present locally).
    """
    out: list[dict[str, Any]] = []
    seen_bases: set[str] = set()
    for card in _cards.MODEL_CARDS:
        aliases = []
        if card.base_name not in seen_bases and card.base_name != card.name:
            aliases.append(card.base_name)
        seen_bases.add(card.base_name)
        aliases.extend(alias for alias, target in _cards.MODEL_ALIASES.items() if target == card.name)
        try:
            resolve_weights(card)
            available = True
        except FileNotFoundError:
            available = False
        out.append(
            {
                "name": card.name,
                "aliases": aliases,
                "arch": card.arch,
                "arch_kwargs": dict(card.arch_kwargs),
                "scale": card.scale,
                "params": parameter_counts(_build(card.arch, card.arch_kwargs, meta=True)),
                "description": card.description,
                "trained": card.trained,
                "degradation": card.degradation,
                "train_config": card.train_config,
                "paper": card.paper,
                "license": card.license,
                "weights": card.weights,
                "sha256": card.sha256,
                "available": available,
            }
        )
    return out
