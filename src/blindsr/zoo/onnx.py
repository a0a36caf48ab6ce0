"""ONNX export of zoo models, checked against PyTorch with ONNX Runtime (``blindsr export-onnx``).

The exported graph takes ``lr``: (N, 3, H, W) float32 RGB in [0, 1], with N, H and W dynamic. It returns ``sr``
(N, 3, s·H, s·W) and, for networks that estimate the degradation (DMSR), also ``kernel`` (N, k, k) and ``noise``
(N, 3, H, W), so that ONNX users see the blur kernel and noise the model assumed. The model's name, scale,
architecture, constructor arguments, the blindsr version and the sha256 of the source weights are stored in the
ONNX file's ``metadata_props`` (:func:`read_onnx_metadata`).

Two PyTorch exporters exist in torch 2.13, and both fail on DMSR's meta-deblur module as it runs for training: its
per-pixel filter (``nets/layers/dynamic_conv.py``) is a custom autograd function behind shape checks on sizes.
The filter has a second, traceable form (``dynamic_filter(impl="traceable")``: the same sum over the k² shifted
images written as plain slices, multiplications and additions, with the filter size a Python int and padding
indices computed from tensors). :func:`exportable_module` exports a copy of the network prepared by its architecture
descriptor (``Architecture.prepare_export``; DMSR's, ``blindsr.archs.dmsr.use_traceable_filters``, makes every
meta-deblur module select that form through ``MetaDeblur.filter_impl``). The export is not trusted blindly:
:func:`export_onnx` runs the ONNX graph under ONNX Runtime on input sizes that differ from the traced one and compares
every output with the original PyTorch network (:func:`check_parity`).

Exporter choice. The default is the TorchScript-based exporter (``dynamo=False``, called "legacy" by torch). With the
traceable filter both exporters give graphs that match PyTorch to about 1e-6 on every size tried (including batch 2
and 1×1 inputs) and the same max errors, but the torch.export-based one ("dynamo") was 13–56× slower to export
here (2-core CPU shared with a training job): 87–129 s for ``dmsr-x4.lite`` against 5.3–6.5 s, and 48–78 s against
1.4 s for a tiny DMSR. The tracer's known weakness, Python computations on sizes frozen at the traced size, is what
the parity check on other sizes is there to catch. ``dynamo=True`` stays available (``blindsr export-onnx
--dynamo``) for when torch drops the TorchScript exporter.

The other architectures that export are prepared the same way: the MRDA student (``mrda_s``, every ``mrda-*`` zoo
model) switches its dynamic depthwise convolutions to shifted slices (``blindsr.archs.mrda.use_traceable_depthwise``:
the grouped convolution's group count, batch × channels, would freeze the batch), and ``toy_sr`` its MATLAB-bicubic
skip to a form whose weights do not depend on the input size (``blindsr.archs.toy.use_traceable_skip``).

Limits: only what the parity check covers is checked (random inputs, two sizes). ``Architecture.onnx`` says which
architectures export (``dmsr``, ``mrda_s``, ``toy_sr``). MRDA's MLN does not: its bicubic skip is rounded to 1/255,
and float32 rounding differences between any size-independent form and the matrix form flip some of those roundings
(``blindsr.archs.mrda``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from blindsr.archs import architecture_of, get_architecture
from blindsr.files import OutputError, make_parent
from blindsr.version import __version__
from blindsr.zoo.weights import LoadedModel, load_model, sha256_file

__all__ = [
    "DEFAULT_TOLERANCE",
    "EXPORT_INSTALL_HINT",
    "PARITY_SHAPES",
    "TRACE_SHAPE",
    "OnnxDependencyError",
    "OnnxExport",
    "OnnxExportError",
    "OnnxParityError",
    "ParityResult",
    "check_parity",
    "export_model",
    "export_onnx",
    "exportable_module",
    "model_metadata",
    "onnx_session",
    "output_names",
    "read_onnx_metadata",
    "require_onnx",
]

EXPORT_INSTALL_HINT = "pip install -e '.[export]' (in the clone)"
TRACE_SHAPE: tuple[int, int, int, int] = (1, 3, 48, 56)
"""The example input the graph is traced with (N, C, H, W)."""
PARITY_SHAPES: tuple[tuple[int, int, int, int], ...] = ((1, 3, 37, 53), (2, 3, 64, 48))
"""The inputs of the parity check: sizes and a batch that differ from :data:`TRACE_SHAPE`."""
DEFAULT_TOLERANCE = 1e-4
"""Largest max |ONNX Runtime − PyTorch| accepted per output (images in [0, 1] units)."""
LEGACY_OPSETS = range(17, 21)
DYNAMO_OPSETS = range(18, 24)


class OnnxDependencyError(ImportError):
    """onnx, onnxscript or onnxruntime is not installed; the message says what to install."""


class OnnxExportError(RuntimeError):
    """The network could not be exported (the message names the exporter and the cause)."""


class OnnxParityError(OnnxExportError):
    """The exported graph disagrees with PyTorch beyond the tolerance (or gives non-finite values).

    Attributes:
        results: the per-input comparison that failed.
    """

    def __init__(self, message: str, results: Sequence[ParityResult]) -> None:
        super().__init__(message)
        self.results = list(results)


def require_onnx(*, runtime: bool = True, dynamo: bool = False) -> None:
    """Check that the optional export dependencies can be imported.

    Args:
        runtime: also require onnxruntime (the parity check, the benchmark).
        dynamo: also require onnxscript (torch's ``dynamo=True`` exporter).

    Raises:
        OnnxDependencyError: one is missing; the message names it and the install line.
    """
    needed = ["onnx"] + (["onnxscript"] if dynamo else []) + (["onnxruntime"] if runtime else [])
    missing = []
    for module in needed:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise OnnxDependencyError(f"ONNX export needs {', '.join(missing)} (not installed): {EXPORT_INSTALL_HINT}")


# --------------------------------------------------------------------------------------------------------------
# an export-friendly network


class _TupleOutputs(nn.Module):
    """``lr -> (sr, [kernel, noise])``: the named outputs of the network as a tuple of tensors."""

    def __init__(self, net: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.net = net
        self.names = names

    def forward(self, lr: Tensor) -> tuple[Tensor, ...]:
        out = self.net(lr)
        if isinstance(out, Tensor):
            return (out,)
        return tuple(getattr(out, name) for name in self.names)


def output_names(model: nn.Module, example: Tensor) -> tuple[str, ...]:
    """What the export returns for `model`: ``("sr",)``, or ``("sr", "kernel", "noise")`` for DMSR-like outputs.

    Runs `model` once on `example` (no gradients) to see what it returns.

    Raises:
        OnnxExportError: the output is neither a tensor nor has a tensor ``.sr``.
    """
    with torch.no_grad():
        out = model(example)
    if isinstance(out, Tensor):
        return ("sr",)
    if not isinstance(getattr(out, "sr", None), Tensor):
        raise OnnxExportError(f"{type(model).__name__} returns {type(out).__name__}: neither a tensor nor has .sr")
    return ("sr", *(name for name in ("kernel", "noise") if isinstance(getattr(out, name, None), Tensor)))


def exportable_module(model: nn.Module, names: tuple[str, ...], *, arch: str | None = None) -> nn.Module:
    """An export-ready copy of `model` (eval mode, float32) returning the tuple of outputs `names`.

    The copy gets its architecture's ``prepare_export`` (DMSR: every meta-deblur module filters with
    ``dynamic_filter(impl="traceable")``); the original `model` is not modified.

    Args:
        model: the network.
        names: the outputs (:func:`output_names`).
        arch: its architecture id; None looks it up from the network's class (nothing is prepared for a network
            outside ``blindsr.archs.ARCHITECTURES``).

    Raises:
        KeyError: an unknown `arch`.
    """
    architecture = get_architecture(arch) if arch is not None else architecture_of(model)
    net = copy.deepcopy(model).float().cpu().eval()
    if architecture is not None and architecture.prepare_export is not None:
        architecture.prepare_export(net)
    return _TupleOutputs(net, names).eval()


# --------------------------------------------------------------------------------------------------------------
# ONNX Runtime and the parity check


@dataclass(frozen=True, slots=True)
class ParityResult:
    """One input of the parity check.

    Attributes:
        shape: the input's (N, C, H, W).
        max_abs_diff: per output name, max |ONNX Runtime − PyTorch| (NaN when either is non-finite).
    """

    shape: tuple[int, ...]
    max_abs_diff: dict[str, float]

    def passed(self, tolerance: float) -> bool:
        """Whether every output is within `tolerance` (NaN fails)."""
        return all(d <= tolerance for d in self.max_abs_diff.values())

    def text(self) -> str:
        """``1x3x37x53: sr 5.4e-07, kernel 7.5e-09, noise 3.0e-07``."""
        diffs = ", ".join(f"{name} {d:.1e}" for name, d in self.max_abs_diff.items())
        return f"{'x'.join(str(s) for s in self.shape)}: {diffs}"


def onnx_session(path: str | os.PathLike[str], *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for `path` (``onnxruntime.InferenceSession``).

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads; None uses ``torch.get_num_threads()`` so that both runtimes get the same.

    Raises:
        OnnxDependencyError: onnxruntime is not installed.
    """
    require_onnx(runtime=True)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads if threads is not None else torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # fatal only: errors are raised, and reported once
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _max_abs_diff(a: Tensor, b: Tensor) -> float:
    if a.shape != b.shape:
        return float("nan")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return float("nan")
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def check_parity(
    onnx_path: str | os.PathLike[str],
    model: nn.Module,
    shapes: Sequence[Sequence[int]] = PARITY_SHAPES,
    *,
    threads: int | None = None,
    seed: int = 0,
) -> list[ParityResult]:
    """Compare the ONNX graph under ONNX Runtime (CPU) with the PyTorch `model` (float32, eval) on random inputs.

    Args:
        onnx_path: the exported file.
        model: the original network (not the export rewrite); its outputs are matched to the graph's by name.
        shapes: the (N, 3, H, W) inputs, uniform in [0, 1] from a generator seeded with `seed`.
        threads: ONNX Runtime intra-op threads (default: torch's).
        seed: the inputs' seed.

    Returns:
        One :class:`ParityResult` per shape, each with max |Δ| per output.
    """
    session = onnx_session(onnx_path, threads=threads)
    input_name = session.get_inputs()[0].name
    names = tuple(o.name for o in session.get_outputs())
    reference = _TupleOutputs(model, names).eval()
    generator = torch.Generator().manual_seed(seed)
    results: list[ParityResult] = []
    for shape in shapes:
        lr = torch.rand(*shape, generator=generator)
        with torch.inference_mode():
            expected = reference(lr.to(_device_of(model)))
        try:
            got = session.run(None, {input_name: lr.numpy()})
        except Exception as e:  # onnxruntime's own error types; e.g. a size frozen at the traced one
            first = _first_line(e)
            shape_text = "x".join(map(str, shape))
            raise OnnxParityError(
                f"ONNX Runtime cannot run the exported graph on a {shape_text} input (the export does not generalise "
                f"beyond the traced size; try the other exporter): {first}",
                results,
            ) from e
        diffs = {
            name: _max_abs_diff(torch.from_numpy(g), e.float().cpu())
            for name, g, e in zip(names, got, expected, strict=True)
        }
        results.append(ParityResult(shape=tuple(shape), max_abs_diff=diffs))
    return results


# --------------------------------------------------------------------------------------------------------------
# export


@dataclass(frozen=True, slots=True)
class OnnxExport:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ONNX file.
        outputs: the graph's output names.
        exporter: ``"legacy"`` (TorchScript) or ``"dynamo"`` (torch.export).
        opset: the default-domain opset.
        seconds: export time (tracing, conversion, metadata), without the parity check.
        metadata: the file's ``metadata_props``.
        parity: the parity check, one entry per input (empty with ``check=False``).
        tolerance: the tolerance the check used.
    """

    path: Path
    outputs: tuple[str, ...]
    exporter: str
    opset: int
    seconds: float
    metadata: dict[str, str] = field(default_factory=dict)
    parity: list[ParityResult] = field(default_factory=list)
    tolerance: float = DEFAULT_TOLERANCE


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The exporters print progress lines, log "torchvision is not installed" and warn about the shape checks they
    # freeze (TracerWarning); none of it is actionable here, and the parity check is the real test.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _first_line(error: BaseException) -> str:
    """The first line of an error message, without terminal colour codes (torch's exporter colours its messages)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _torch_export(
    module: nn.Module, example: Tensor, path: Path, names: tuple[str, ...], *, opset: int, dynamo: bool
) -> None:
    spatial = {"sr": ("sr_height", "sr_width"), "noise": ("height", "width")}
    if dynamo:
        from torch.export import Dim

        dims = {0: Dim("batch", min=1, max=1024), 2: Dim("height", min=2), 3: Dim("width", min=2)}
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=True,
            input_names=["lr"],
            output_names=list(names),
            dynamic_shapes=(dims,),
            opset_version=opset,
            external_data=False,
            optimize=True,
            verbose=False,
        )
        return
    axes: dict[str, dict[int, str]] = {"lr": {0: "batch", 2: "height", 3: "width"}}
    for name in names:
        axes[name] = {0: "batch"}
        if name in spatial:
            axes[name].update({2: spatial[name][0], 3: spatial[name][1]})
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=False,
        input_names=["lr"],
        output_names=list(names),
        dynamic_axes=axes,
        opset_version=opset,
        do_constant_folding=True,
    )


def _write_metadata(path: Path, metadata: Mapping[str, str], doc: str, static: Mapping[str, Sequence[int]]) -> None:
    """Add `metadata` and `doc` to the file, and name the static output sizes the exporter left symbolic."""
    import onnx

    proto = onnx.load(str(path))
    for output in proto.graph.output:
        sizes = static.get(output.name)
        dims = output.type.tensor_type.shape.dim
        if sizes is None or len(dims) != len(sizes):
            continue
        dynamic = {0, 2, 3} if len(sizes) == 4 else {0}  # images: N, H, W; the kernel (N, k, k): N only
        for axis, dim in enumerate(dims):
            if axis not in dynamic:
                dim.dim_value = sizes[axis]  # e.g. the kernel's k x k, which the legacy exporter calls Reshape..._dim_1
    known = {p.key for p in proto.metadata_props}
    for key, value in metadata.items():
        if key in known:
            continue
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = doc
    proto.producer_name = "blindsr"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _meta_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    opset: int | None = None,
    dynamo: bool = False,
    check: bool = True,
    shapes: Sequence[Sequence[int]] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    trace_shape: Sequence[int] | None = None,
    arch: str | None = None,
) -> OnnxExport:
    """Export `model` to ONNX with dynamic batch, height and width, check it, and write it atomically.

    The graph is written to a temporary file next to `path`, given its metadata, validated with
    ``onnx.checker``, compared with PyTorch under ONNX Runtime (`check`), and only then renamed to `path`; a failed
    export or check leaves `path` untouched.

    Args:
        model: the network; (N, 3, H, W) in [0, 1] → a tensor or an output with ``.sr`` (and ``.kernel``,
            ``.noise``, which become outputs too). Not modified.
        path: the ``.onnx`` file to write (parent folders are created).
        metadata: ``metadata_props`` (values converted with ``str``; dicts and lists as JSON).
        opset: the ONNX opset; default 17 (legacy exporter, 17–20) or 18 (dynamo, 18–23).
        dynamo: use torch's ``dynamo=True`` exporter (needs onnxscript) instead of the TorchScript one.
        check: run :func:`check_parity` on `shapes` and fail above `tolerance`.
        shapes: the parity-check inputs (default :data:`PARITY_SHAPES`); they should differ from `trace_shape`.
        tolerance: largest max |Δ| accepted per output.
        trace_shape: the example input's shape (default :data:`TRACE_SHAPE`).
        arch: the network's architecture id, whose export preparation is applied (:func:`exportable_module`);
            None looks it up from the network's class.

    Returns:
        What was written, with the parity results.

    Raises:
        OnnxDependencyError: onnx (or onnxscript for `dynamo`, onnxruntime for `check`) is missing.
        ValueError: an opset outside the exporter's range.
        OnnxExportError: the exporter failed.
        OnnxParityError: the check failed (the message gives the worst output and input).
    """
    require_onnx(runtime=check, dynamo=dynamo)
    opsets = DYNAMO_OPSETS if dynamo else LEGACY_OPSETS
    exporter = "dynamo" if dynamo else "legacy"
    if opset is None:
        opset = opsets.start
    if opset not in opsets:
        raise ValueError(f"--opset {opset}: the {exporter} exporter supports opsets {opsets.start}-{opsets.stop - 1}")

    shapes = PARITY_SHAPES if shapes is None else shapes  # read at call time, so tests can make them smaller
    trace_shape = TRACE_SHAPE if trace_shape is None else trace_shape
    target = Path(path)
    make_parent(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")  # unique: exports may overlap
    generator = torch.Generator().manual_seed(1234)
    start = time.perf_counter()
    ref_model = copy.deepcopy(model).float().cpu().eval()  # the caller's module keeps its dtype, device and mode
    example = torch.rand(*trace_shape, generator=generator)
    names = output_names(ref_model, example)
    with torch.no_grad():
        static = dict(zip(names, (tuple(t.shape) for t in _TupleOutputs(ref_model, names)(example)), strict=True))
    module = exportable_module(ref_model, names, arch=arch)
    meta = {str(k): _meta_value(v) for k, v in (metadata or {}).items()}
    meta.update({"exporter": exporter, "opset": str(opset), "torch_version": torch.__version__})
    meta.setdefault("blindsr_version", __version__)
    meta.setdefault("outputs", ", ".join(names))
    doc = (
        "blindsr super-resolution network. Input lr: (N, 3, H, W) float32 RGB in [0, 1]. Outputs: "
        + "; ".join(_OUTPUT_DOC[n] for n in names)
        + "."
    )
    try:
        try:
            with _quiet(), torch.no_grad():
                _torch_export(module, example, tmp, names, opset=opset, dynamo=dynamo)
        except Exception as e:
            raise OnnxExportError(f"the {exporter} ONNX exporter failed: {type(e).__name__}: {_first_line(e)}") from e
        _write_metadata(tmp, meta, doc, static)
        seconds = time.perf_counter() - start
        parity: list[ParityResult] = []
        if check:
            parity = check_parity(tmp, ref_model, shapes)
            failed = [r for r in parity if not r.passed(tolerance)]
            if failed:
                worst = failed[0]
                name, diff = max(worst.max_abs_diff.items(), key=lambda kv: kv[1] if kv[1] == kv[1] else float("inf"))
                raise OnnxParityError(
                    f"parity check failed: ONNX Runtime vs PyTorch max |diff| of {name!r} on a "
                    f"{'x'.join(map(str, worst.shape))} input is {diff:.2e} > tolerance {tolerance:.0e}; "
                    f"{target} was not written",
                    parity,
                )
        os.replace(tmp, target)
    except OSError as e:
        raise OutputError(f"cannot write {target}: {_first_line(e)}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return OnnxExport(
        path=target,
        outputs=names,
        exporter=exporter,
        opset=opset,
        seconds=seconds,
        metadata=meta,
        parity=parity,
        tolerance=tolerance,
    )


_OUTPUT_DOC = {
    "sr": "sr (N, 3, s*H, s*W) the super-resolved image, in [0, 1] units (not clipped)",
    "kernel": "kernel (N, k, k) the estimated blur kernel (row-major, non-negative, sums to 1)",
    "noise": "noise (N, 3, H, W) the estimated noise realisation of lr, signed, in [0, 1] units",
}


def model_metadata(loaded: LoadedModel) -> dict[str, str]:
    """The ``metadata_props`` an export of `loaded` carries: name, card, scale, arch, arch_kwargs, source sha256."""
    return {
        "name": loaded.card.name if loaded.card is not None else loaded.path.stem,
        "card": loaded.card.name if loaded.card is not None else "",
        "scale": str(loaded.scale),
        "arch": loaded.arch,
        "arch_kwargs": json.dumps(dict(loaded.arch_kwargs), sort_keys=True),
        "blindsr_version": __version__,
        "source_file": loaded.path.name,
        "source_sha256": sha256_file(loaded.path),
        "input": "lr (N, 3, H, W) float32 RGB in [0, 1]",
    }


def export_model(name_or_path: str | os.PathLike[str], path: str | os.PathLike[str], **kwargs: Any) -> OnnxExport:
    """Load a zoo model (card name or release file, as :func:`blindsr.zoo.load_model`) and :func:`export_onnx` it.

    Args:
        name_or_path: e.g. ``"dmsr-x4"`` or ``"runs/export/model.safetensors"``.
        path: the ``.onnx`` file to write.
        **kwargs: passed to :func:`export_onnx` (``opset``, ``dynamo``, ``check``, ``shapes``, ``tolerance``).

    Raises:
        As :func:`blindsr.zoo.load_model` (unknown name, missing file, bad release) and :func:`export_onnx`.
    """
    require_onnx(runtime=kwargs.get("check", True), dynamo=kwargs.get("dynamo", False))
    loaded = load_model(name_or_path)
    return export_onnx(loaded.model, path, metadata=model_metadata(loaded), arch=loaded.arch, **kwargs)


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file, as a dict.

    Raises:
        OnnxDependencyError: onnx is not installed.
        FileNotFoundError: no such file.
    """
    require_onnx(runtime=False)
    import onnx

    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX file {path} not found")
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
