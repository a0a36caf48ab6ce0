"""Inference speed and memory of the zoo models: fp32, channels_last, bf16 autocast, ONNX Runtime, and tiled upscaling.

What it measures, for each model (every zoo card whose weights are present, plus with ``--paper`` a randomly
initialised DMSR ×4 of the paper's size, 8.5 M parameters, **random weights, timing only**) and each LR size
(``--sizes``, default 180×320 as in the MRDA paper and 128×128 as in the DMSR paper), batch 1:

* variants, side by side in one run:

  - ``fp32``: eager PyTorch, NCHW (the reference of every ratio and error);
  - ``fp32 channels_last``: the model and the input in ``torch.channels_last``;
  - ``bf16 autocast``: ``torch.autocast(device, torch.bfloat16)`` around the fp32 model (weights cast per call);
  - ``bf16 autocast + channels_last``;
  - ``onnxruntime fp32``: the model exported by ``blindsr.zoo.onnx`` (TorchScript exporter, dynamic sizes), run by
    ONNX Runtime's CPU execution provider with ``intra_op_num_threads`` = torch's threads;

* latency: the median (and the min and max) of ``--repeats`` calls after ``--warmup`` calls, under
  ``torch.inference_mode()`` with ``--threads`` intra-op threads. The variants are interleaved (repetition r times
  every variant once, in turn, after an untimed ``--settle`` pause), so background load hits all of them alike.
  The speed-up of a variant is the median over the repetitions of the **paired** ratio fp32 ms ÷ variant ms of the
  same repetition (seconds apart): on a shared machine whose load comes in bursts this is far more stable than a
  ratio of medians, which is also saved (``speedup_of_medians``);
* accuracy: max |sr − sr_fp32| of each variant on the same input (uniform random in [0, 1]);
* peak memory, CPU: each variant runs once more in a **fresh Python process** that loads the model, prepares the
  variant and its input (and, for ONNX Runtime, the session), then resets the kernel's peak-RSS counter (writes
  ``5`` to ``/proc/self/clear_refs``) and makes one call (the first: it includes one-time workspace and arena
  allocations). Reported: ``VmHWM`` after the call minus ``VmRSS`` before it, from ``/proc/self/status``, i.e. the
  peak resident memory the call added, torch's and ONNX Runtime's native allocations included (``tracemalloc``
  sees neither). Where ``clear_refs`` cannot be written, ``ru_maxrss`` after − before is used (the JSON says which).
  CUDA: ``torch.cuda.max_memory_allocated()`` − the allocation before the call, after ``reset_peak_memory_stats``;
* work: the MACs of one forward (``benchmarks/_macs.py``: convolutions, linear layers and DMSR's per-pixel
  dynamic filter, k²·C·H·W), the achieved GMAC/s of the **fastest** call (MACs ÷ min time), and that as a fraction
  of the machine's matmul ceiling measured in the same run: the fastest of ``--repeats`` ``torch.mm`` calls on
  ``--matmul-n``² matrices (2048 by default) in fp32 and in bf16, with the same threads, measured before and after
  the model runs (the better is the ceiling). Best call against best matmul: both are what the hardware does when
  the call is not starved by other processes. fp32 variants and ONNX Runtime are compared with the fp32 ceiling,
  bf16 variants with the bf16 one.

``--tiled``: peak memory and time of one ``--tiled-size``² LR image (2000×2000 by default) through
``blindsr.Upscaler(model, tile=T)`` for each ``--tile`` T (fp32, CPU), each in a fresh process, measured as above.
The untiled forward at that size would need tens of GB (DMSR's meta-deblur predicts 225 filter taps per HR pixel).

The machine (CPU model, cores, flags, torch and onnxruntime versions, threads, load average before and after) is
printed and saved. Run from the repository root::

    python benchmarks/inference.py                                   # zoo models, both sizes, all variants
    python benchmarks/inference.py --paper --tiled --json out.json    # + paper-size DMSR (random) + tiled 2000²
    python benchmarks/inference.py --quick                           # smoke run: small sizes, 2 repeats

Flags: ``--models a,b --paper --no-zoo --sizes 180x320,128x128 --variants fp32,fp32-cl,bf16,bf16-cl,ort --repeats N
--warmup N --threads N --settle S --device cpu|cuda --no-memory --matmul-n N --tiled --tiled-only --tiled-size N
--tile T[,T] --quick --json FILE``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

try:
    import blindsr  # noqa: F401
except ImportError:  # running from a checkout without installing: fall back to <repo>/src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_macs.py

from _macs import MacCount, count_macs  # noqa: E402

from blindsr.archs import ARCHITECTURES  # noqa: E402
from blindsr.zoo import LoadedModel, load_model  # noqa: E402
from blindsr.zoo import cards as zoo_cards  # noqa: E402
from blindsr.zoo.weights import resolve_weights  # noqa: E402

VARIANTS: dict[str, str] = {
    "fp32": "fp32",
    "fp32-cl": "fp32 channels_last",
    "bf16": "bf16 autocast",
    "bf16-cl": "bf16 autocast + channels_last",
    "ort": "onnxruntime fp32",
}
PAPER_KWARGS: dict[str, Any] = {"scale": 4}  # DMSRNet defaults: 64 features, 5 groups x 20 RCABs, 8.52 M parameters
DEFAULT_SIZES = ((180, 320), (128, 128))


# ----------------------------------------------------------------------------------------------------------------
# machine
# ----------------------------------------------------------------------------------------------------------------


def _cpuinfo_field(name: str) -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith(name):
                return line.split(":", 1)[1].strip()
    return ""


def machine_info(threads: int) -> dict[str, Any]:
    """CPU model, cores, relevant CPU flags, library versions, threads, load average and date."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    flags = set(_cpuinfo_field("flags").split())
    try:
        import onnxruntime

        ort_version: str | None = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        "cpu_model": _cpuinfo_field("model name") or platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "cpu_flags": sorted(flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile"}),
        "torch_version": torch.__version__,
        "torch_threads": threads,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onnxruntime_version": ort_version,
        "python_version": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1_5_15": list(os.getloadavg()),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_line(info: dict[str, Any]) -> str:
    """One line for the report."""
    return (
        f"{info['cpu_model']}, {info['cpu_cores']} cores ({info['cpu_cores_usable']} usable; "
        f"{' '.join(info['cpu_flags']) or 'no AVX-512/AMX'}), torch {info['torch_version']} "
        f"({info['torch_threads']} threads, {info['cpu_capability']}), onnxruntime {info['onnxruntime_version']}, "
        f"GPU: {info['gpu'] or 'none'}, load average {info['load_average_1_5_15'][0]:.2f}, {info['date']}"
    )


def _cuda_sync() -> None:
    torch.cuda.synchronize()


def matmul_peak(n: int, *, repeats: int = 5, device: str = "cpu") -> dict[str, dict[str, float]]:
    """The machine's matmul ceiling: the fastest of `repeats` ``torch.mm`` calls on n×n matrices, fp32 and bf16.

    Returns:
        ``{"fp32": {"ms", "gflops", "gmacs", "median_ms"}, "bf16": {...}}`` with GFLOP/s = 2n³ / t and
        GMAC/s = n³ / t of the fastest call t (``ms``).
    """
    out: dict[str, dict[str, float]] = {}
    sync: Callable[[], None] | None = _cuda_sync if device == "cuda" else None
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        g = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
        b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
        times = time_interleaved({name: (partial(torch.mm, a, b), sync)}, repeats, warmup=2)[0][name]
        t = min(times)
        out[name] = {
            "ms": t * 1e3,
            "gflops": 2 * n**3 / t / 1e9,
            "gmacs": n**3 / t / 1e9,
            "median_ms": statistics.median(times) * 1e3,
        }
    return out


# ----------------------------------------------------------------------------------------------------------------
# models and variants
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """A model to benchmark.

    Attributes:
        label: how the table names it.
        source: a zoo name or release path for ``load_model``; ignored when `random_kwargs` is set.
        random_kwargs: build ``ARCHITECTURES[arch].build(random_kwargs)`` with random weights instead (timing only).
        arch: the architecture of `random_kwargs`.
        note: shown under the table (e.g. "random weights, timing only").
    """

    label: str
    source: str = ""
    random_kwargs: dict[str, Any] | None = None
    arch: str = "dmsr"
    note: str = ""


def zoo_specs(names: Sequence[str] | None = None) -> tuple[list[ModelSpec], list[str]]:
    """Specs of the zoo cards (all, or `names`) whose weights are present; and notes on those skipped."""
    specs, skipped = [], []
    for card in zoo_cards.MODEL_CARDS:
        if names is not None and card.name not in names and card.base_name not in names:
            continue
        try:
            resolve_weights(card)
        except FileNotFoundError:
            skipped.append(f"{card.name}: weights not found locally, skipped")
            continue
        specs.append(ModelSpec(label=card.name, source=card.name, note=card.trained))
    return specs, skipped


def paper_spec() -> ModelSpec:
    """A randomly initialised DMSR ×4 of the paper's size (8.52 M parameters): timing only."""
    return ModelSpec(
        label="dmsr-x4 paper size (random weights)",
        random_kwargs=dict(PAPER_KWARGS),
        arch="dmsr",
        note="DMSRNet(scale=4) with the paper's defaults (64 features, 5x20 RCABs), random weights: timing only",
    )


def build_model(spec: ModelSpec, device: str = "cpu") -> LoadedModel:
    """Load (or randomly build, seed 0) the model of `spec`, fp32, eval mode, on `device`."""
    if spec.random_kwargs is None:
        return load_model(spec.source, device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = ARCHITECTURES[spec.arch].build(spec.random_kwargs)
    net = net.to(device).eval()
    return LoadedModel(
        model=net,
        arch=spec.arch,
        arch_kwargs=dict(spec.random_kwargs),
        scale=int(spec.random_kwargs["scale"]),
        card=None,
        path=Path(f"random-{spec.arch}.safetensors"),
        metadata={},
    )


def _sr(out: Any) -> Tensor:
    sr = getattr(out, "sr", out)
    assert isinstance(sr, Tensor)
    return sr


def make_variant(
    name: str, model: nn.Module, lr: Tensor, *, onnx_path: Path | None = None, threads: int | None = None
) -> Callable[[], Tensor]:
    """A zero-argument callable that runs one forward of `variant` on `lr` and returns ``sr`` (a tensor).

    Preparation (channels_last copies, the ONNX Runtime session) happens here, outside what is timed.

    Args:
        name: a key of :data:`VARIANTS`.
        model: the fp32 network (not modified: channels_last variants use a copy).
        lr: (N, 3, h, w) float32 input on the model's device.
        onnx_path: the exported graph (``ort`` only).
        threads: ONNX Runtime intra-op threads (default: torch's).
    """
    device_type = lr.device.type
    if name in ("fp32", "bf16"):
        net, x = model, lr
    elif name in ("fp32-cl", "bf16-cl"):
        net = copy.deepcopy(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = lr.contiguous(memory_format=torch.channels_last)
    elif name == "ort":
        if onnx_path is None:
            raise ValueError("the ort variant needs onnx_path")
        from blindsr.zoo.onnx import onnx_session

        session = onnx_session(onnx_path, threads=threads)
        feed = {"lr": lr.detach().cpu().numpy()}

        def run_ort() -> Tensor:
            return torch.from_numpy(session.run(["sr"], feed)[0])

        return run_ort
    else:
        raise ValueError(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")
    autocast = name.startswith("bf16")

    def run_torch() -> Tensor:
        with torch.inference_mode():
            if autocast:
                with torch.autocast(device_type, dtype=torch.bfloat16):
                    return _sr(net(x))
            return _sr(net(x))

    return run_torch


# ----------------------------------------------------------------------------------------------------------------
# timing and memory
# ----------------------------------------------------------------------------------------------------------------


def time_interleaved(
    paths: Mapping[str, tuple[Callable[[], object], Callable[[], None] | None]],
    repeats: int,
    *,
    warmup: int = 1,
    settle: float = 0.0,
) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Wall times (s) of several paths, interleaved: repetition r runs every path once, in turn.

    Returns:
        The times per path, and each path's output of its first warm-up call (or of its first timed call when
        `warmup` is 0).
    """
    first: dict[str, object] = {}
    for name, (fn, sync) in paths.items():
        for _ in range(warmup):
            out = fn()
            if sync is not None:
                sync()
            first.setdefault(name, out)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, (fn, sync) in paths.items():
            if sync is not None:
                sync()
            if settle > 0:
                time.sleep(settle)
            t0 = time.perf_counter()
            out = fn()
            if sync is not None:
                sync()
            times[name].append(time.perf_counter() - t0)
            first.setdefault(name, out)
    return times, first


_STATUS = re.compile(r"^(VmHWM|VmRSS):\s+(\d+)\s+kB", re.MULTILINE)


def _status_kib() -> dict[str, int]:
    with contextlib.suppress(OSError):
        return {k: int(v) for k, v in _STATUS.findall(Path("/proc/self/status").read_text())}
    return {}


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def peak_memory(device: str = "cpu") -> Iterator[dict[str, Any]]:
    """Measure the peak memory a block adds: ``{"peak_mib": ..., "method": ...}`` is filled in on exit.

    CPU: peak RSS (VmHWM, reset through /proc/self/clear_refs) minus RSS before, or the ru_maxrss increase where
    the reset is impossible. CUDA: ``max_memory_allocated`` minus the allocation before.
    """
    result: dict[str, Any] = {}
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        yield result
        torch.cuda.synchronize()
        result.update(peak_mib=(torch.cuda.max_memory_allocated() - before) / 2**20, method="cuda max_memory_allocated")
        return
    before_rss = _status_kib().get("VmRSS")
    before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reset = before_rss is not None and _reset_peak_rss()
    yield result
    if reset:
        assert before_rss is not None
        result.update(peak_mib=(_status_kib()["VmHWM"] - before_rss) / 1024, method="VmHWM - VmRSS (clear_refs)")
    else:
        after_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result.update(peak_mib=(after_max - before_max) / 1024, method="ru_maxrss increase")


def memory_probe(request: dict[str, Any]) -> dict[str, Any]:
    """Peak memory of one call, measured in this process (the ``--probe`` entry point runs it in a fresh one).

    Args:
        request: ``{"spec": ModelSpec as dict, "variant": name, "shape": [N, 3, h, w], "threads": n,
            "onnx_path": str | None, "device": "cpu" | "cuda"}``, or for the tiled part ``{"spec", "tiled": size,
            "tile": T, "threads"}``.

    Returns:
        ``{"peak_mib", "method", "seconds"}`` (+ ``"tile_used"`` for the tiled part).
    """
    torch.set_num_threads(int(request["threads"]))
    spec = ModelSpec(**request["spec"])
    device = request.get("device", "cpu")
    loaded = build_model(spec, device=device)
    g = torch.Generator().manual_seed(0)
    if "tiled" in request:
        from blindsr.inference import Upscaler

        size = int(request["tiled"])
        upscaler = Upscaler(loaded, tile=int(request["tile"]), device=device, precision="fp32")
        image = torch.rand(1, 3, size, size, generator=g)
        with peak_memory(device) as mem:
            t0 = time.perf_counter()
            out = upscaler.upscale(image)
            seconds = time.perf_counter() - t0
        return {**mem, "seconds": seconds, "tile_used": upscaler.tile, "output_shape": list(out.shape)}
    lr = torch.rand(*request["shape"], generator=g).to(device)
    onnx_path = Path(request["onnx_path"]) if request.get("onnx_path") else None
    fn = make_variant(request["variant"], loaded.model, lr, onnx_path=onnx_path, threads=int(request["threads"]))
    with peak_memory(device) as mem:
        t0 = time.perf_counter()
        fn()
        seconds = time.perf_counter() - t0
    return {**mem, "seconds": seconds}


def probe_in_subprocess(request: dict[str, Any], *, timeout: float = 3600) -> dict[str, Any]:
    """Run :func:`memory_probe` in a fresh Python process (this file with ``--probe JSON``) and return its result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", json.dumps(request)]
    env = {**os.environ, "OMP_NUM_THREADS": str(request["threads"])}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"probe failed (exit {proc.returncode}): {tail}"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One (model, size, variant) measurement."""

    model: str
    lr_size: str
    variant: str
    ms: float
    times_ms: list[float]
    speedup: float
    speedup_of_medians: float
    max_abs_err: float
    gmac: float
    gmac_per_s: float
    ceiling_fraction: float | None
    peak_mib: float | None = None
    memory_method: str | None = None
    memory_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def export_for_ort(model: nn.Module, directory: Path, label: str) -> Path:
    """Export `model` to ONNX (dynamic sizes; the benchmark's own error column replaces the export's check)."""
    from blindsr.zoo.onnx import export_onnx

    path = directory / (re.sub(r"[^A-Za-z0-9_.-]+", "_", label) + ".onnx")
    export_onnx(model, path, check=False)
    return path


def bench_model(
    spec: ModelSpec,
    sizes: Sequence[tuple[int, int]],
    *,
    variants: Sequence[str] = tuple(VARIANTS),
    repeats: int = 5,
    warmup: int = 1,
    settle: float = 0.25,
    threads: int = 2,
    device: str = "cpu",
    memory: bool = True,
    ceiling: dict[str, dict[str, float]] | None = None,
    workdir: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[Row]:
    """All variants of one model at each size: latency, speed-up, error, MACs, GMAC/s and (`memory`) peak memory.

    Args:
        spec: the model.
        sizes: LR (h, w) sizes, batch 1.
        variants: keys of :data:`VARIANTS`; ``fp32`` is always run (it is the reference).
        repeats, warmup, settle: see :func:`time_interleaved`.
        threads: torch intra-op threads (and ONNX Runtime's).
        device: "cpu" or "cuda" (the ``ort`` variant is CPU-only and is skipped on CUDA).
        memory: measure peak memory (CPU: one fresh process per variant and size).
        ceiling: :func:`matmul_peak`'s result, for the fraction-of-ceiling column.
        workdir: where the ONNX export goes (a temporary folder by default).
        log: progress output.
    """
    torch.set_num_threads(threads)
    names = ["fp32", *(v for v in variants if v != "fp32")]
    if device != "cpu" and "ort" in names:
        names.remove("ort")
        log("  (onnxruntime variant skipped: CPU execution provider only)")
    loaded = build_model(spec, device=device)
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        folder = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="blindsr-bench-")))
        onnx_path = None
        if "ort" in names:
            t0 = time.perf_counter()
            onnx_path = export_for_ort(loaded.model, folder, spec.label)
            log(f"  exported {spec.label} to ONNX in {time.perf_counter() - t0:.1f} s")
        for h, w in sizes:
            shape = (1, 3, h, w)
            macs: MacCount = count_macs(loaded.model, shape)
            lr = torch.rand(*shape, generator=torch.Generator().manual_seed(0)).to(device)
            sync: Callable[[], None] | None = _cuda_sync if device == "cuda" else None
            paths = {v: (make_variant(v, loaded.model, lr, onnx_path=onnx_path, threads=threads), sync) for v in names}
            log(f"  {spec.label} {h}x{w}: {macs.gmac:.1f} GMAC per forward; timing {', '.join(names)} ...")
            times, outputs = time_interleaved(paths, repeats, warmup=warmup, settle=settle)
            ref = outputs["fp32"]
            assert isinstance(ref, Tensor)
            base = statistics.median(times["fp32"])
            for v in names:
                t = statistics.median(times[v])
                paired = statistics.median(a / b for a, b in zip(times["fp32"], times[v], strict=True))
                out = outputs[v]
                assert isinstance(out, Tensor)
                err = float((out.float().cpu() - ref.float().cpu()).abs().max())
                kind = "bf16" if v.startswith("bf16") else "fp32"
                rate = macs.total / min(times[v]) / 1e9
                row = Row(
                    model=spec.label,
                    lr_size=f"{h}x{w}",
                    variant=VARIANTS[v],
                    ms=t * 1e3,
                    times_ms=[x * 1e3 for x in times[v]],
                    speedup=paired,
                    speedup_of_medians=base / t,
                    max_abs_err=err,
                    gmac=macs.gmac,
                    gmac_per_s=rate,
                    ceiling_fraction=rate / ceiling[kind]["gmacs"] if ceiling else None,
                    extra={"macs_by_kind": macs.by_kind, "key": v},
                )
                if memory:
                    request = {
                        "spec": asdict(spec),
                        "variant": v,
                        "shape": list(shape),
                        "threads": threads,
                        "onnx_path": str(onnx_path) if onnx_path else None,
                        "device": device,
                    }
                    probe = probe_in_subprocess(request) if device == "cpu" else memory_probe(request)
                    row.peak_mib = probe.get("peak_mib")
                    row.memory_method = probe.get("method")
                    row.memory_error = probe.get("error")
                rows.append(row)
                log(f"    {format_row(row)}")
    return rows


def bench_tiled(
    spec: ModelSpec, size: int, tiles: Sequence[int], *, threads: int = 2, subprocess_: bool = True
) -> list[dict[str, Any]]:
    """One ``size``² LR image through ``blindsr.Upscaler(model, tile=T)`` per tile size: time and peak memory.

    Each measurement runs in a fresh process (`subprocess_`), or in this one for tests.
    """
    out = []
    for tile in tiles:
        request = {"spec": asdict(spec), "tiled": size, "tile": tile, "threads": threads}
        result = probe_in_subprocess(request) if subprocess_ else memory_probe(request)
        out.append({"model": spec.label, "lr_size": f"{size}x{size}", "tile": tile, **result})
    return out


# ----------------------------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------------------------


def _fmt_mem(row: Row) -> str:
    if row.peak_mib is not None:
        return f"{row.peak_mib:.0f}"
    return "error" if row.memory_error else "-"


def format_row(row: Row) -> str:
    """One progress line."""
    frac = f"{100 * row.ceiling_fraction:.1f} %" if row.ceiling_fraction is not None else "-"
    return (
        f"{row.variant:30s} {row.ms:9.1f} ms (min {min(row.times_ms):.1f})  x{row.speedup:4.2f}  "
        f"err {row.max_abs_err:.1e}  {row.gmac_per_s:6.1f} GMAC/s best ({frac} of matmul)  peak +{_fmt_mem(row)} MiB"
    )


def markdown_table(rows: Sequence[Row]) -> str:
    """The result table in Markdown (what docs/benchmarks.md shows)."""
    lines = [
        "| model | LR | variant | ms, median (min–max) | speed-up vs fp32 | max \\|err\\| vs fp32 "
        "| peak RSS added, MiB | GMAC | GMAC/s, best call | of matmul ceiling |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        err = "–" if r.variant == VARIANTS["fp32"] else f"{r.max_abs_err:.1e}"
        frac = f"{100 * r.ceiling_fraction:.1f} %" if r.ceiling_fraction is not None else "–"
        lines.append(
            f"| {r.model} | {r.lr_size} | {r.variant} | {r.ms:.0f} ({min(r.times_ms):.0f}–{max(r.times_ms):.0f}) "
            f"| {r.speedup:.2f} | {err} | {_fmt_mem(r)} "
            f"| {r.gmac:.1f} | {r.gmac_per_s:.1f} | {frac} |"
        )
    return "\n".join(lines)


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        h, _, w = part.strip().lower().partition("x")
        sizes.append((int(h), int(w)))
    return sizes


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--models", help="comma-separated zoo names (default: every card whose weights are present)")
    p.add_argument("--paper", action="store_true", help="add a random-weight DMSR x4 of the paper's size (timing)")
    p.add_argument("--no-zoo", dest="zoo", action="store_false", help="leave out the zoo models (e.g. with --paper)")
    p.add_argument("--sizes", default="180x320,128x128", help="LR sizes HxW, comma-separated")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--settle", type=float, default=0.25, help="untimed pause before each timed call (s)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory processes")
    p.add_argument("--matmul-n", type=int, default=2048)
    p.add_argument("--tiled", action="store_true", help="also run the tiled Upscaler part")
    p.add_argument("--tiled-only", action="store_true", help="run only the tiled part (implies --tiled)")
    p.add_argument("--tiled-size", type=int, default=2000)
    p.add_argument("--tile", default="512", help="tile sizes for --tiled, comma-separated")
    p.add_argument("--quick", action="store_true", help="smoke run: 32x48 LR, 2 repeats, matmul 1024, tiled 96 / 48")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--probe", help=argparse.SUPPRESS)  # internal: one memory measurement in a fresh process
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print the table; return (and with ``--json`` save) everything measured."""
    args = build_parser().parse_args(argv)
    if args.probe:
        print(json.dumps(memory_probe(json.loads(args.probe))))
        return {}
    if args.quick:
        args.sizes, args.repeats, args.matmul_n, args.tiled_size, args.tile = "32x48", 2, 1024, 96, "48"
        args.paper = False
    args.tiled = args.tiled or args.tiled_only
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    info = machine_info(args.threads)
    print(f"machine: {machine_line(info)}")
    if info["load_average_1_5_15"][0] > 0.5 * (info["cpu_cores_usable"] or 1):
        print("note: the machine is busy (load average above); absolute times are contended, compare the ratios")

    specs, skipped = zoo_specs(args.models.split(",") if args.models else None) if args.zoo else ([], [])
    if args.paper:
        specs.append(paper_spec())
    for line in skipped:
        print(line)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    sizes = _parse_sizes(args.sizes)

    print(f"matmul ceiling ({args.matmul_n}^3, {args.threads} threads) ...")
    peak_before = matmul_peak(args.matmul_n, device=args.device)
    rows: list[Row] = []
    for spec in [] if args.tiled_only else specs:
        print(f"{spec.label}:")
        rows += bench_model(
            spec,
            sizes,
            variants=variants,
            repeats=args.repeats,
            warmup=args.warmup,
            settle=args.settle,
            threads=args.threads,
            device=args.device,
            memory=args.memory,
            ceiling=peak_before,
        )
    peak_after = matmul_peak(args.matmul_n, device=args.device)
    ceiling = {k: max(peak_before[k], peak_after[k], key=lambda d: d["gmacs"]) for k in peak_before}
    for row in rows:  # the fraction against the better of the two ceiling measurements
        kind = "bf16" if "bf16" in row.variant else "fp32"
        row.ceiling_fraction = row.gmac_per_s / ceiling[kind]["gmacs"]

    tiled: list[dict[str, Any]] = []
    if args.tiled and specs:
        tiles = [int(t) for t in args.tile.split(",")]
        target = specs[0]
        print(f"tiled: {target.label}, one {args.tiled_size}x{args.tiled_size} LR image, tiles {tiles} ...")
        tiled = bench_tiled(target, args.tiled_size, tiles, threads=args.threads)

    info["load_average_after_1_5_15"] = list(os.getloadavg())
    total = time.perf_counter() - t_start
    print()
    print(f"machine: {machine_line(info)}; load average after: {info['load_average_after_1_5_15'][0]:.2f}")
    for k in ("fp32", "bf16"):
        b, a = peak_before[k], peak_after[k]
        print(
            f"matmul {args.matmul_n}^3 {k}, fastest call: {b['gflops']:.0f} / {a['gflops']:.0f} GFLOP/s before / "
            f"after ({b['gmacs']:.0f} / {a['gmacs']:.0f} GMAC/s; median call {b['median_ms']:.0f} / "
            f"{a['median_ms']:.0f} ms); ceiling used: {ceiling[k]['gmacs']:.0f} GMAC/s"
        )
    print()
    print(markdown_table(rows))
    for spec in specs:
        if spec.note:
            print(f"- {spec.label}: {spec.note}")
    methods = sorted({r.memory_method for r in rows if r.memory_method})
    if methods:
        print(f"peak memory: {', '.join(methods)}, one call in a fresh process")
    for row in rows:
        if row.memory_error:
            print(f"memory probe of {row.model} {row.lr_size} {row.variant}: {row.memory_error}")
    for t in tiled:
        if "error" in t:
            print(f"tiled {t['model']} {t['lr_size']} tile {t['tile']}: {t['error']}")
        else:
            print(
                f"tiled {t['model']} {t['lr_size']} tile {t['tile']} (fp32, Upscaler): {t['seconds']:.1f} s, "
                f"peak RSS added {t['peak_mib']:.0f} MiB, output {'x'.join(map(str, t['output_shape']))}"
            )
    print(f"(total benchmark time {total:.0f} s)")
    record = {
        "benchmark": "inference",
        "command": " ".join([Path(sys.executable).name, *(sys.argv if argv is None else ["inference.py", *argv])]),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": info,
        "matmul": {"before": peak_before, "after": peak_after, "ceiling": ceiling, "n": args.matmul_n},
        "rows": [asdict(r) for r in rows],
        "tiled": tiled,
        "models": [asdict(s) for s in specs],
        "total_seconds": total,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2, default=float) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return record


if __name__ == "__main__":
    main()
