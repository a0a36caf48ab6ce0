"""Degradation throughput: HR patches per second through sample + blur + MATLAB bicubic + noise.

What it measures, for one batch of ``--batch`` HR patches of ``--patch`` x ``--patch`` pixels at ``x--scale`` and
for each training preset (``dmsr``, ``mrda-iso-x4``, ``mrda-aniso-noise``), in one run and side by side:

1. ``engine cpu``: the batched engine in float32 on the CPU, ``sample_degradation`` + ``degrade`` for the whole
   batch (parameter sampling and noise drawing are inside the timing).
2. Two naive per-image baselines, written here (they are baselines, not library code):

   a. ``numpy per image (BasicSR-style)``: per image, numpy's RNG draws the kernel parameters and the noise, numpy
      builds the Gaussian kernel, a numpy loop over the kernel taps blurs with the preset's border padding (what
      ``cv2.filter2D`` computes, vectorised over pixels), MATLAB bicubic through per-image contribution matrices
      built with numpy (the approach of BasicSR's ``matlab_functions.imresize``, applied as two matrix products
      rather than a Python loop over output rows, so this baseline is, if anything, faster than BasicSR), then
      numpy noise, clipping and 8-bit rounding as the preset asks. Its output is checked against the engine's for
      the same kernel parameters and noise (the printed ``max|diff|``), so the comparison is apples to apples.
   b. ``PIL per image (IKC-style)``: per image, a torch ``conv2d`` blur of the single image, then
      ``PIL.Image.resize(..., Image.BICUBIC)`` on uint8 (PIL's bicubic truncates at the borders and works on
      8-bit data, as IKC's data pipeline does), numpy noise. Its PSNR against the exact engine output for the
      same kernels and noise is printed: it is faster than (a) but does not compute the same degradation.

3. ``engine cuda`` when ``torch.cuda.is_available()`` (warm-up, ``torch.cuda.synchronize()`` around each timed
   repetition; sampling and noise drawn with a CUDA generator), else ``cuda: not available``.

Each number is the median over ``--repeats`` repetitions after one warm-up, as ms per batch and patches/s; the
speed-up ``engine / naive`` is computed from the same run. The paths are interleaved (repetition r times every path
once, in turn, with an untimed ``--settle`` sleep of 0.25 s before each call so that the previous path's spinning
OpenBLAS/OpenMP threads do not slow the next one), so background load on a shared machine hits all of them alike.
A per-stage split (sampling, blur, bicubic, rest) is measured for the engine and for the numpy baseline. numpy's
elementwise operations are single-threaded; its matrix products use whatever BLAS threads numpy has; ``--threads``
sets torch's intra-op threads only.

Run (installed package, or from the repository root without installing)::

    python benchmarks/degradation.py
    python benchmarks/degradation.py --batch 32 --patch 192 --scale 4 --repeats 5 --device all --json out.json

Flags: ``--batch --patch --scale --repeats --threads N --device cpu|cuda|all --presets a,b,c --settle S
--json FILE``.
``--device cpu`` skips CUDA; ``--device cuda`` skips the batched CPU engine (the naive CPU baselines still run,
they are the reference of the speed-ups).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

try:
    import blindsr  # noqa: F401
except ImportError:  # running from a checkout without installing: fall back to <repo>/src
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from blindsr.degradations import (  # noqa: E402
    DegradationParams,
    DegradationSpec,
    Pipeline,
    degrade,
    get_training_preset,
    sample_degradation,
)
from blindsr.degradations.noise import standard_normal  # noqa: E402
from blindsr.ops.filter import filter2d_per_sample  # noqa: E402
from blindsr.ops.resize import bicubic_downscale  # noqa: E402

DEFAULT_PRESETS = ("dmsr", "mrda-iso-x4", "mrda-aniso-noise")
_NP_PAD = {"replicate": "edge", "reflect": "reflect", "circular": "wrap", "zeros": "constant"}


# ----------------------------------------------------------------------------------------------------------------
# Machine description
# ----------------------------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, object]:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    info: dict[str, object] = {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy_version": np.__version__,
        "pillow_version": Image.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return info


def machine_line(info: dict[str, object]) -> str:
    return (
        f"{info['cpu_model']}, {info['cpu_cores']} cores ({info['cpu_cores_usable']} usable), "
        f"torch {info['torch_version']} ({info['torch_threads']} threads, {info['cpu_capability']}), "
        f"numpy {info['numpy_version']}, Pillow {info['pillow_version']}, GPU: {info['gpu'] or 'none'}, "
        f"{info['date']}"
    )


# ----------------------------------------------------------------------------------------------------------------
# Timing helpers
# ----------------------------------------------------------------------------------------------------------------


def time_median(fn: Callable[[], object], repeats: int, *, warmup: int = 1, sync: Callable[[], None] | None = None):
    """Median wall time (seconds) of `fn` over `repeats` calls after `warmup` calls, and all the times."""
    times = time_interleaved({"fn": (fn, sync, warmup)}, repeats)["fn"]
    return statistics.median(times), times


def time_interleaved(
    paths: dict[str, tuple[Callable[[], object], Callable[[], None] | None, int]], repeats: int, settle: float = 0.0
):
    """Wall times (seconds) of several paths, interleaved: repetition r runs every path once, in turn.

    Interleaving exposes every path to the same background load, so their ratios stay meaningful on a shared
    machine. `paths` maps a name to ``(fn, sync or None, warm-up calls)``. `settle` seconds of sleep (untimed)
    before each timed call let the previous path's worker threads (OpenBLAS, OpenMP) stop spinning.
    """
    for fn, sync, warmup in paths.values():
        for _ in range(warmup):
            fn()
            if sync is not None:
                sync()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, (fn, sync, _warmup) in paths.items():
            if sync is not None:
                sync()
            if settle > 0:
                time.sleep(settle)
            t0 = time.perf_counter()
            fn()
            if sync is not None:
                sync()
            times[name].append(time.perf_counter() - t0)
    return times


def _row(seconds: float, batch: int, times: list[float]) -> dict[str, object]:
    return {
        "ms_per_batch": seconds * 1e3,
        "patches_per_s": batch / seconds,
        "min_ms": min(times) * 1e3,
        "times_ms": [t * 1e3 for t in times],
    }


# ----------------------------------------------------------------------------------------------------------------
# Baseline (a): numpy per image, BasicSR-style
# ----------------------------------------------------------------------------------------------------------------


def np_isotropic_kernel(sigma: float, size: int) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)`` in numpy (float64)."""
    if sigma <= 0:
        k = np.zeros((size, size))
        k[size // 2, size // 2] = 1.0
        return k
    r = (size - 1) / 2
    ax = np.arange(-r, r + 1)
    xx, yy = np.meshgrid(ax, ax)
    k = np.exp(-(xx * xx + yy * yy) / (2.0 * sigma * sigma))
    k[k < np.finfo(np.float64).eps * k.max()] = 0
    return k / k.sum()


def np_anisotropic_kernel(lambda1: float, lambda2: float, theta: float, size: int) -> np.ndarray:
    """Anisotropic Gaussian, standard-deviation convention, via the inverse covariance (BasicSR's ``pdf2``)."""
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    cov = rot @ np.diag([lambda1 * lambda1, lambda2 * lambda2]) @ rot.T
    inv = np.linalg.inv(cov)
    r = (size - 1) / 2
    ax = np.arange(-r, r + 1)
    xx, yy = np.meshgrid(ax, ax)
    grid = np.stack([xx, yy], axis=-1)  # (size, size, 2): (x, y)
    quad = np.sum((grid @ inv) * grid, axis=-1)
    k = np.exp(-0.5 * (quad - quad.min()))
    k[k < np.finfo(np.float64).eps * k.max()] = 0
    return k / k.sum()


def np_blur(img: np.ndarray, kernel: np.ndarray, padding: str) -> np.ndarray:
    """Correlate an (H, W, C) float32 image with a (k, k) kernel: a loop over the taps (``cv2.filter2D``)."""
    h, w = img.shape[:2]
    p = kernel.shape[0] // 2
    padded = np.pad(img, ((p, p), (p, p), (0, 0)), mode=_NP_PAD[padding])
    kernel = kernel.astype(np.float32)
    out = np.zeros_like(img)
    tmp = np.empty_like(img)
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            np.multiply(padded[i : i + h, j : j + w], kernel[i, j], out=tmp)
            out += tmp
    return out


def _np_cubic(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    a2, a3 = a * a, a * a * a
    return (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1) + (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))


def np_resize_matrix(in_len: int, out_len: int, scale: float, border: str = "symmetric") -> np.ndarray:
    """(out_len, in_len) MATLAB bicubic resize matrix (antialiased when downscaling), built from scratch."""
    width = 4.0 / scale if scale < 1 else 4.0
    u = np.arange(1, out_len + 1, dtype=np.float64) / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    ind = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - ind
    weights = scale * _np_cubic(scale * dist) if scale < 1 else _np_cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    idx = ind.astype(np.int64) - 1
    if border == "symmetric":
        idx = np.mod(idx, 2 * in_len)
        idx = np.where(idx >= in_len, 2 * in_len - 1 - idx, idx)
    else:
        idx = np.clip(idx, 0, in_len - 1)
    mat = np.zeros((out_len, in_len))
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), idx.ravel()), weights.ravel())
    return mat


def np_imresize_down(img: np.ndarray, scale: int, border: str = "symmetric") -> np.ndarray:
    """MATLAB ``imresize(img, 1/scale, 'bicubic')`` of an (H, W, C) float32 image; matrices built per call."""
    h, w = img.shape[:2]
    mh = np_resize_matrix(h, h // scale, 1.0 / scale, border).astype(np.float32)
    mw = np_resize_matrix(w, w // scale, 1.0 / scale, border).astype(np.float32)
    chw = np.ascontiguousarray(img.transpose(2, 0, 1))
    out = mh @ chw @ mw.T  # (C, h, w)
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def np_finish(lr_clean: np.ndarray, noise: np.ndarray | None, pipe: Pipeline) -> np.ndarray:
    """Noise, clipping and 8-bit rounding as the pipeline asks (MATLAB rounding: floor(255 x + 0.5))."""
    if pipe.quantize_clean:
        lr_clean = np.floor(np.clip(lr_clean, 0, 1) * 255 + 0.5) / 255
    lr = lr_clean if noise is None else lr_clean + noise
    if pipe.clip:
        lr = np.clip(lr, 0, 1)
    if pipe.quantize:
        lr = np.floor(np.clip(lr, 0, 1) * 255 + 0.5) / 255
    return lr.astype(np.float32)


def _np_draw_params(spec: DegradationSpec, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """One (kernel, noise sigma) draw with numpy's RNG."""
    if spec.kernel == "iso":
        kernel = np_isotropic_kernel(rng.uniform(*spec.sigma), spec.kernel_size)
    elif spec.kernel == "aniso":
        l1, l2, th = rng.uniform(*spec.lambda1), rng.uniform(*spec.lambda2), rng.uniform(*spec.theta)
        kernel = np_anisotropic_kernel(l1, l2, th, spec.kernel_size)
    else:
        kernel = np_isotropic_kernel(0.0, spec.kernel_size)
    return kernel, float(rng.uniform(*spec.noise))


def numpy_per_image(
    hr_list: list[np.ndarray], spec: DegradationSpec, scale: int, rng: np.random.Generator, stages: dict | None = None
) -> list[np.ndarray]:
    """Baseline (a): the whole batch, one image at a time. `stages` accumulates per-stage seconds if given."""
    pipe = spec.pipeline
    out = []
    shared = _np_draw_params(spec, rng) if spec.per == "batch" else None
    for img in hr_list:
        t0 = time.perf_counter()
        kernel, sigma_n = shared if shared is not None else _np_draw_params(spec, rng)
        t1 = time.perf_counter()
        blurred = np_blur(img, kernel, pipe.blur_padding)
        t2 = time.perf_counter()
        lr_clean = np_imresize_down(blurred, scale, pipe.bicubic_border)
        t3 = time.perf_counter()
        noise = None
        if sigma_n > 0:
            noise = (sigma_n / 255.0) * rng.standard_normal(lr_clean.shape, dtype=np.float32)
        out.append(np_finish(lr_clean, noise, pipe))
        t4 = time.perf_counter()
        if stages is not None:
            for key, dt in (("sample", t1 - t0), ("blur", t2 - t1), ("bicubic", t3 - t2), ("noise+rest", t4 - t3)):
                stages[key] = stages.get(key, 0.0) + dt
    return out


# ----------------------------------------------------------------------------------------------------------------
# Baseline (b): torch conv2d per image + PIL bicubic on uint8, IKC-style
# ----------------------------------------------------------------------------------------------------------------


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x * 255.0 + 0.5), 0, 255).astype(np.uint8)


def pil_one(img_chw: torch.Tensor, kernel: np.ndarray, noise: np.ndarray | None, pipe: Pipeline, scale: int):
    """One image: torch blur, uint8, PIL bicubic, float, noise. Returns (h, w, 3) float32."""
    k = kernel.shape[0]
    p = k // 2
    x = img_chw.unsqueeze(0)
    mode = "constant" if pipe.blur_padding == "zeros" else pipe.blur_padding
    x = F.pad(x, (p, p, p, p), mode=mode)
    weight = torch.from_numpy(kernel.astype(np.float32)).view(1, 1, k, k).expand(3, 1, k, k)
    blurred = F.conv2d(x, weight, groups=3)[0]
    u8 = _to_uint8(blurred.permute(1, 2, 0).numpy())
    h, w = u8.shape[:2]
    lr = np.asarray(Image.fromarray(u8).resize((w // scale, h // scale), Image.BICUBIC), dtype=np.float32) / 255.0
    return np_finish(lr, noise, pipe)


def pil_per_image(
    hr_list: list[torch.Tensor], spec: DegradationSpec, scale: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Baseline (b): the whole batch, one image at a time."""
    out = []
    shared = _np_draw_params(spec, rng) if spec.per == "batch" else None
    h, w = hr_list[0].shape[-2:]
    for img in hr_list:
        kernel, sigma_n = shared if shared is not None else _np_draw_params(spec, rng)
        noise = None
        if sigma_n > 0:
            noise = (sigma_n / 255.0) * rng.standard_normal((h // scale, w // scale, 3), dtype=np.float32)
        out.append(pil_one(img, kernel, noise, pipe=spec.pipeline, scale=scale))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Equivalence checks (same kernel parameters and same noise as the engine)
# ----------------------------------------------------------------------------------------------------------------


def _kernels_from_params(deg: DegradationParams, spec: DegradationSpec) -> list[np.ndarray]:
    """Rebuild each kernel with numpy from the engine's drawn parameters (checks the kernel code too)."""
    ks = spec.kernel_size
    out = []
    for b in range(deg.batch_size):
        if deg.kernel_sigma is not None:
            out.append(np_isotropic_kernel(float(deg.kernel_sigma[b]), ks))
        elif deg.lambda1 is not None and deg.lambda2 is not None and deg.theta is not None:
            out.append(np_anisotropic_kernel(float(deg.lambda1[b]), float(deg.lambda2[b]), float(deg.theta[b]), ks))
        else:
            out.append(np_isotropic_kernel(0.0, ks))
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def check_equivalence(hr: torch.Tensor, spec: DegradationSpec, scale: int, seed: int = 1234) -> dict[str, float]:
    """Engine vs baselines for the same parameters and noise: numpy max|diff| and PIL PSNR."""
    b, _, h, w = hr.shape
    g = torch.Generator().manual_seed(seed)
    deg = sample_degradation(spec, b, g)
    eps = standard_normal((b, 3, h // scale, w // scale), generator=g)
    exact = degrade(hr, deg, scale=scale, noise=eps)
    # float comparison without clipping / 8-bit rounding (a 1e-7 difference can flip a rounding)
    float_pipe = dataclasses.replace(spec.pipeline, clip=False, quantize=False, quantize_clean=False)
    exact_float = degrade(hr, dataclasses.replace(deg, pipeline=float_pipe), scale=scale, noise=eps).lr
    kernels = _kernels_from_params(deg, spec)
    sig = deg.noise_sigma.double().numpy()
    hr_hwc = hr.permute(0, 2, 3, 1).numpy()
    eps_hwc = eps.permute(0, 2, 3, 1).numpy()
    max_kernel, max_float, flips, psnr_pil = 0.0, 0.0, 0, []
    for i in range(b):
        max_kernel = max(max_kernel, float(np.abs(kernels[i] - deg.kernels[i].double().numpy()).max()))
        noise = (sig[i] / 255.0) * eps_hwc[i] if sig[i] > 0 else None
        lr_clean = np_imresize_down(
            np_blur(hr_hwc[i], kernels[i], spec.pipeline.blur_padding), scale, spec.pipeline.bicubic_border
        )
        ref_float = exact_float[i].permute(1, 2, 0).numpy()
        ref = exact.lr[i].permute(1, 2, 0).numpy()
        max_float = max(max_float, float(np.abs(np_finish(lr_clean, noise, float_pipe) - ref_float).max()))
        mine = np_finish(lr_clean, noise, spec.pipeline)
        if spec.pipeline.quantize:
            flips += int((np.abs(mine - ref) > 0.5 / 255).sum())
        psnr_pil.append(_psnr(pil_one(hr[i], kernels[i], noise, spec.pipeline, scale), ref))
    return {
        "numpy_kernel_max_abs_diff": max_kernel,
        "numpy_max_abs_diff": max_float,
        "numpy_8bit_values_differing": flips,
        "numpy_8bit_values_total": int(exact.lr.numel()) if spec.pipeline.quantize else 0,
        "pil_psnr_db": statistics.mean(psnr_pil),
        "pil_psnr_min_db": min(psnr_pil),
    }


# ----------------------------------------------------------------------------------------------------------------
# Engine measurements
# ----------------------------------------------------------------------------------------------------------------


def engine_step(hr: torch.Tensor, spec: DegradationSpec, scale: int, g: torch.Generator) -> torch.Tensor:
    deg = sample_degradation(spec, hr.shape[0], g)
    return degrade(hr, deg, scale=scale, generator=g).lr


def engine_split(hr, spec, scale, g, repeats, sync=None) -> dict[str, float]:
    """Median ms of the engine's stages measured separately: sampling, blur, bicubic."""
    deg = sample_degradation(spec, hr.shape[0], g)
    if deg.kernels.device != hr.device:
        deg = deg.to(hr.device)
    pipe = spec.pipeline
    blurred = filter2d_per_sample(hr, deg.kernels, padding=pipe.blur_padding)
    t_sample, _ = time_median(lambda: sample_degradation(spec, hr.shape[0], g), repeats, sync=sync)
    t_blur, _ = time_median(lambda: filter2d_per_sample(hr, deg.kernels, padding=pipe.blur_padding), repeats, sync=sync)
    t_bic, _ = time_median(lambda: bicubic_downscale(blurred, scale, border=pipe.bicubic_border), repeats, sync=sync)
    return {"sample": t_sample * 1e3, "blur": t_blur * 1e3, "bicubic": t_bic * 1e3}


def _split_text(split: dict[str, float], total_ms: float) -> str:
    """Stages measured separately; a missing ``noise+rest`` is the median total minus the measured stages."""
    parts = [f"{k} {v:.1f}" for k, v in split.items()]
    if "noise+rest" not in split:
        parts.append(f"noise+rest {total_ms - sum(split.values()):.1f}")
    return ", ".join(parts) + f" ms (median total {total_ms:.1f})"


# ----------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=32, help="HR patches per batch (default 32)")
    p.add_argument("--patch", type=int, default=192, help="HR patch size (default 192)")
    p.add_argument("--scale", type=int, default=4, help="downscaling factor (default 4)")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions after one warm-up (default 5)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) (default: torch's)")
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all", help="engine devices (default all)")
    p.add_argument("--presets", default=",".join(DEFAULT_PRESETS), help="comma-separated training presets")
    p.add_argument("--json", type=Path, default=None, help="write every number and the machine info here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--settle", type=float, default=0.25, help="untimed sleep (s) before each timed call (0.25)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.repeats < 1 or args.batch < 1:
        raise SystemExit("--repeats and --batch must be >= 1")
    if args.patch % args.scale:
        raise SystemExit(f"--patch {args.patch} is not divisible by --scale {args.scale}")
    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    info = machine_info()
    t_start = time.perf_counter()
    print("# blindsr degradation throughput")
    print(f"machine: {machine_line(info)}")
    print(
        f"config: batch {args.batch} x 3 x {args.patch} x {args.patch} HR, x{args.scale}, float32, "
        f"median of {args.repeats} after 1 warm-up, device={args.device}"
    )
    cuda_ok = args.device in ("cuda", "all") and torch.cuda.is_available()
    if args.device in ("cuda", "all") and not cuda_ok:
        print("cuda: not available")

    gen = torch.Generator().manual_seed(args.seed)
    hr = torch.rand(args.batch, 3, args.patch, args.patch, generator=gen)
    hr_np = [np.ascontiguousarray(x) for x in hr.permute(0, 2, 3, 1).numpy()]
    hr_list = list(hr.unbind(0))
    hr_cuda = hr.cuda() if cuda_ok else None

    results: dict[str, object] = {}
    for name in presets:
        spec = get_training_preset(name)
        pipe = spec.pipeline
        print(
            f"\n## {name}: {spec.kernel} {spec.kernel_size}x{spec.kernel_size}, noise U{list(spec.noise)}, "
            f"per {spec.per}, {pipe.blur_padding} blur padding, {pipe.bicubic_border} bicubic border, "
            f"{'8-bit' if pipe.quantize else 'float'} LR"
        )
        res: dict[str, object] = {"spec": repr(spec)}
        check = check_equivalence(hr, spec, args.scale)
        res["check"] = check
        line = f"check numpy vs engine (same kernels+noise): max|diff| {check['numpy_max_abs_diff']:.2e}"
        if pipe.quantize:
            n_diff, n_tot = check["numpy_8bit_values_differing"], check["numpy_8bit_values_total"]
            line += f" before 8-bit rounding, 8-bit values differing {n_diff}/{n_tot}"
        line += f", kernel max|diff| {check['numpy_kernel_max_abs_diff']:.1e}"
        print(line)
        print(
            f"check PIL vs engine (same kernels+noise): PSNR {check['pil_psnr_db']:.2f} dB "
            f"(worst image {check['pil_psnr_min_db']:.2f} dB): not equivalent (8-bit intermediate, PIL borders)"
        )

        paths: dict[str, tuple[Callable[[], object], Callable[[], None] | None, int]] = {}
        g = torch.Generator().manual_seed(args.seed)
        if args.device in ("cpu", "all"):
            paths["engine cpu (batched)"] = (lambda spec=spec, g=g: engine_step(hr, spec, args.scale, g), None, 1)
        rng = np.random.default_rng(args.seed)
        stage_runs: list[dict[str, float]] = []

        def run_numpy(spec=spec, rng=rng, stage_runs=stage_runs) -> None:
            stages: dict[str, float] = {}
            numpy_per_image(hr_np, spec, args.scale, rng, stages)
            stage_runs.append(stages)

        paths["numpy per image (BasicSR-style)"] = (run_numpy, None, 1)
        rng_pil = np.random.default_rng(args.seed + 1)
        paths["PIL per image (IKC-style)"] = (
            lambda spec=spec, rng=rng_pil: pil_per_image(hr_list, spec, args.scale, rng),
            None,
            1,
        )
        gc = None
        if cuda_ok:
            assert hr_cuda is not None
            gc = torch.Generator(device="cuda").manual_seed(args.seed)
            # 3 warm-up calls: CUDA context, kernel selection, caching allocator
            paths["engine cuda (batched)"] = (
                lambda spec=spec, gc=gc: engine_step(hr_cuda, spec, args.scale, gc),
                torch.cuda.synchronize,
                3,
            )
        times = time_interleaved(paths, args.repeats, settle=args.settle)
        rows: dict[str, dict[str, object]] = {k: _row(statistics.median(ts), args.batch, ts) for k, ts in times.items()}

        splits: dict[str, dict[str, float]] = {}
        if "engine cpu (batched)" in rows:
            splits["engine cpu (batched)"] = engine_split(hr, spec, args.scale, g, args.repeats)
        timed = stage_runs[1:]  # drop the warm-up
        splits["numpy per image (BasicSR-style)"] = {
            k: statistics.median(r[k] for r in timed) * 1e3 for k in ("sample", "blur", "bicubic", "noise+rest")
        }
        if gc is not None:
            sync = torch.cuda.synchronize
            splits["engine cuda (batched)"] = engine_split(hr_cuda, spec, args.scale, gc, args.repeats, sync=sync)

        # speed-ups from this run
        naive_keys = ("numpy per image (BasicSR-style)", "PIL per image (IKC-style)")
        for key, row in rows.items():
            if key.startswith("engine"):
                row["speedup_vs"] = {n: rows[n]["ms_per_batch"] / row["ms_per_batch"] for n in naive_keys}
        if "engine cpu (batched)" in rows and "engine cuda (batched)" in rows:
            cuda_x = rows["engine cpu (batched)"]["ms_per_batch"] / rows["engine cuda (batched)"]["ms_per_batch"]
            rows["engine cuda (batched)"]["speedup_vs"]["engine cpu (batched)"] = cuda_x
        print(f"{'path':34s} {'ms/batch':>10s} {'patches/s':>10s} {'cpu speed-up':>13s} {'cuda speed-up':>14s}")
        for key, row in rows.items():
            cols = []
            for eng in ("engine cpu (batched)", "engine cuda (batched)"):
                if eng in rows and not key.startswith("engine"):
                    cols.append(f"{rows[key]['ms_per_batch'] / rows[eng]['ms_per_batch']:.1f}x")
                else:
                    cols.append("-")
            print(f"{key:34s} {row['ms_per_batch']:10.1f} {row['patches_per_s']:10.1f} {cols[0]:>13s} {cols[1]:>14s}")
        for key, split in splits.items():
            print(f"split {key}: {_split_text(split, rows[key]['ms_per_batch'])}")
        if "engine cuda (batched)" in rows and "engine cpu (batched)" in rows["engine cuda (batched)"]["speedup_vs"]:
            print(
                f"engine cuda vs engine cpu: {rows['engine cuda (batched)']['speedup_vs']['engine cpu (batched)']:.2f}x"
            )
        res["rows"] = rows
        res["splits_ms"] = splits
        results[name] = res

    total = time.perf_counter() - t_start
    print(f"\n(speed-up columns: naive ms / engine ms, same run; total benchmark time {total:.1f} s)")
    record = {
        "benchmark": "degradation",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": info,
        "results": results,
        "total_seconds": total,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2, default=float) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return record


if __name__ == "__main__":
    main()
