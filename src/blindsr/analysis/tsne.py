"""Exact t-SNE (van der Maaten & Hinton, JMLR 2008) in NumPy and torch, for the IDR plots of ``blindsr analyze idr``.

What is computed, step by step:

1. optional PCA to ``pca_dims`` dimensions (distances then cost O(N·pca_dims) instead of O(N·D));
2. squared Euclidean distances d_ij in the input space;
3. per point i, the precision beta_i of a Gaussian over its neighbours, found by binary search so that the entropy
   of ``p_{j|i} ∝ exp(-beta_i d_ij)`` equals ``log(perplexity)`` (natural log);
4. the joint ``P = (P_cond + P_condᵀ) / 2N``;
5. gradient descent on ``KL(P || Q)``, Q the Student-t (one degree of freedom) similarities of the 2-D points:
   momentum 0.5 then 0.8, per-coordinate adaptive gains (delta-bar-delta, minimum 0.01), early exaggeration of P
   for the first iterations, learning rate ``max(N / exaggeration / 4, 50)`` by default.

It is exact (O(N²) memory and time per iteration): fine up to about 2,000 points (on the order of a minute for
1,000 iterations on a CPU). The calibration is NumPy float64; the descent runs in float32 with torch on the CPU, in
blocks of rows (memory-bound O(N²) steps). The only random thing, the initial points, comes from
``numpy.random.default_rng(seed)``, so the same input and seed give the same embedding.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = np.concatenate([rng.normal(0, 1, (15, 5)), rng.normal(20, 1, (15, 5))])
>>> result = run_tsne(x, seed=0, n_iter=300)
>>> result.embedding.shape, result.perplexity
((30, 2), 9.666666666666666)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import Tensor

__all__ = ["TSNEResult", "conditional_probabilities", "joint_probabilities", "squared_distances", "run_tsne"]

_MACHINE_EPS = float(np.finfo(np.float64).eps)
_MIN_GAIN = 0.01


@dataclass(frozen=True, slots=True)
class TSNEResult:
    """What :func:`run_tsne` returns.

    Attributes:
        embedding: (N, dims) float64 low-dimensional points (centred).
        kl_divergence: the final ``KL(P || Q)`` (without exaggeration).
        perplexity: the perplexity used (the requested one, capped at ``max((N - 1) / 3, 1.5)``).
        seed: the seed of the random initialisation.
        n_iter: gradient-descent iterations run.
        learning_rate: the step size used.
    """

    embedding: NDArray[np.float64]
    kl_divergence: float
    perplexity: float
    seed: int
    n_iter: int
    learning_rate: float


def squared_distances(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """All pairwise squared Euclidean distances of the rows of `x` (N, D), exactly 0 on the diagonal, never < 0.

    >>> squared_distances(np.array([[0.0, 0.0], [3.0, 4.0]])).tolist()
    [[0.0, 25.0], [25.0, 0.0]]
    """
    x = np.asarray(x, dtype=np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def conditional_probabilities(
    d2: NDArray[np.float64], *, perplexity: float, tol: float = 1e-5, max_iter: int = 200
) -> NDArray[np.float64]:
    """``p_{j|i}`` with each row's Gaussian precision calibrated to `perplexity` by binary search (all rows at once).

    Args:
        d2: (N, N) squared distances (the diagonal is ignored).
        perplexity: the target ``exp(H(P_i))``, 1 < perplexity < N.
        tol: tolerance on the entropy (nats).
        max_iter: binary-search steps at most.

    Returns:
        (N, N) rows summing to 1, zero diagonal.

    >>> d2 = squared_distances(np.arange(12.0).reshape(6, 2))
    >>> p = conditional_probabilities(d2, perplexity=2.0)
    >>> bool(np.allclose(p.sum(axis=1), 1.0)), float(np.exp(-(p * np.log(np.where(p > 0, p, 1))).sum(1)).round(4)[0])
    (True, 2.0)
    """
    n = d2.shape[0]
    if not 1.0 < perplexity < n:
        raise ValueError(f"perplexity must be in (1, N = {n}), got {perplexity}")
    off = ~np.eye(n, dtype=bool)
    d = d2[off].reshape(n, n - 1)
    d = d - d.min(axis=1, keepdims=True)  # shift for stability: the entropy does not change
    target = math.log(perplexity)
    # start each row at 1 / its mean distance (any scale of the input converges in a few dozen halvings)
    scale = d.mean(axis=1)
    beta = np.where(scale > 0, 1.0 / np.maximum(scale, _MACHINE_EPS), 1.0)
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    p = np.empty_like(d)
    active = np.ones(n, dtype=bool)
    for _ in range(max_iter):
        rows = np.flatnonzero(active)
        if rows.size == 0:
            break
        e = np.exp(-d[rows] * beta[rows, None])
        s = e.sum(axis=1)
        pr = e / s[:, None]
        h = np.log(s) + beta[rows] * (d[rows] * pr).sum(axis=1)
        p[rows] = pr
        diff = h - target
        done = np.abs(diff) < tol
        up = diff > 0  # entropy too high: sharpen (larger beta)
        b = beta[rows]
        lo[rows] = np.where(up, b, lo[rows])
        hi[rows] = np.where(up, hi[rows], b)
        new = np.where(
            up,
            np.where(np.isinf(hi[rows]), b * 2.0, (b + hi[rows]) / 2.0),
            np.where(lo[rows] == 0.0, b / 2.0, (b + lo[rows]) / 2.0),
        )
        beta[rows] = np.where(done, b, new)
        active[rows[done]] = False
    out = np.zeros((n, n))
    out[off] = p.reshape(-1)
    return out


def joint_probabilities(d2: NDArray[np.float64], *, perplexity: float) -> NDArray[np.float64]:
    """The symmetric t-SNE input similarities ``P = (P_cond + P_condᵀ) / 2N``, floored at 1e-12 off the diagonal."""
    p_cond = conditional_probabilities(d2, perplexity=perplexity)
    p = (p_cond + p_cond.T) / (2.0 * d2.shape[0])
    p = np.maximum(p, 1e-12)
    np.fill_diagonal(p, 0.0)
    return p


def _pca(x: NDArray[np.float64], dims: int) -> NDArray[np.float64]:
    centred = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out: NDArray[np.float64] = centred @ vt[:dims].T
    return out


def _gradient(p: Tensor, y: Tensor) -> Tensor:
    """dKL/dY = 4 Σ_j (p_ij - q_ij) w_ij (y_i - y_j), with w_ij = (1 + |y_i - y_j|²)⁻¹ and q_ij = w_ij / Z.

    Computed as ``4 (A - B / Z)``, ``A_i = Σ_j p_ij w_ij (y_i - y_j)``, ``B_i = Σ_j w_ij² (y_i - y_j)``, in blocks of
    rows, so the N x N temporaries stay in the CPU cache (the step is memory-bound).
    """
    n = y.shape[0]
    block = max(32, (1 << 17) // n)
    sq = (y * y).sum(dim=1)
    a = torch.empty_like(y)
    b = torch.empty_like(y)
    z = 0.0
    for start in range(0, n, block):
        stop = min(start + block, n)
        yb = y[start:stop]
        w = torch.addmm(sq.unsqueeze(0).expand(stop - start, n), yb, y.T, alpha=-2.0)
        w.add_(sq[start:stop, None]).clamp_min_(0.0).add_(1.0).reciprocal_()  # Student-t kernel (1 + d²)⁻¹
        w[:, start:stop].fill_diagonal_(0.0)
        z += float(w.sum(dtype=torch.float64))
        pw = p[start:stop] * w
        a[start:stop] = pw.sum(dim=1, keepdim=True) * yb - pw @ y
        w.square_()
        b[start:stop] = w.sum(dim=1, keepdim=True) * yb - w @ y
    return 4.0 * (a - b / z)


def _kl_divergence(p: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    num = 1.0 / (1.0 + squared_distances(y))
    np.fill_diagonal(num, 0.0)
    q = np.maximum(num / num.sum(), 1e-12)
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / q[mask])).sum())


def run_tsne(
    x: ArrayLike,
    *,
    dims: int = 2,
    perplexity: float = 30.0,
    n_iter: int = 1000,
    seed: int = 0,
    early_exaggeration: float = 12.0,
    exaggeration_iters: int = 250,
    learning_rate: float | Literal["auto"] = "auto",
    pca_dims: int | None = 50,
    progress: bool = False,
) -> TSNEResult:
    """Embed the rows of `x` in `dims` dimensions with exact t-SNE.

    Args:
        x: (N, D) points, N >= 4.
        dims: embedding dimensions (2).
        perplexity: effective number of neighbours (30); capped at ``max((N - 1) / 3, 1.5)`` for small N
            (recorded in the result).
        n_iter: gradient-descent iterations (1000, at least ``exaggeration_iters`` is sensible).
        seed: seed of the initial points (``N(0, 1e-4²)``).
        early_exaggeration: factor on P during the first `exaggeration_iters` iterations (12).
        exaggeration_iters: how long the exaggeration (and momentum 0.5) lasts (250).
        learning_rate: step size, or "auto" = ``max(N / early_exaggeration / 4, 50)``.
        pca_dims: reduce `x` to this many principal components first when D is larger (50); None keeps D.
        progress: show a tqdm progress bar over the iterations (stderr).

    Returns:
        A :class:`TSNEResult`.

    Raises:
        ValueError: bad shapes or arguments, or non-finite input.
    """
    data = np.asarray(x, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"x must be (N, D), got shape {data.shape}")
    n = data.shape[0]
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}")
    if not np.isfinite(data).all():
        raise ValueError("x has NaN or infinite values")
    if dims < 1 or n_iter < 1 or perplexity <= 1 or early_exaggeration < 1 or exaggeration_iters < 0:
        raise ValueError(
            f"bad t-SNE arguments: dims={dims}, n_iter={n_iter}, perplexity={perplexity}, "
            f"early_exaggeration={early_exaggeration}, exaggeration_iters={exaggeration_iters}"
        )
    if pca_dims is not None and data.shape[1] > pca_dims and n > pca_dims:
        data = _pca(data, pca_dims)
    used_perplexity = min(float(perplexity), max((n - 1) / 3.0, 1.5))
    p = joint_probabilities(squared_distances(data), perplexity=used_perplexity)
    rate = max(n / early_exaggeration / 4.0, 50.0) if learning_rate == "auto" else float(learning_rate)
    if rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")

    rng = np.random.default_rng(seed)
    init = rng.normal(0.0, 1e-4, size=(n, dims))
    # the descent runs in float32 torch on the CPU: the O(N²) steps are memory-bound, and float32 halves the traffic
    # (the points need no more precision); the calibration above and the final KL are float64
    y = torch.from_numpy(init).float()
    update = torch.zeros_like(y)
    gains = torch.ones_like(y)
    p32 = torch.from_numpy(p).float()
    p_exaggerated = p32 * early_exaggeration

    from tqdm.auto import tqdm

    bar = tqdm(range(n_iter), desc="t-SNE", unit="it", disable=not progress, leave=False)
    for it in bar:
        exaggerating = it < exaggeration_iters
        grad = _gradient(p_exaggerated if exaggerating else p32, y)
        momentum = 0.5 if exaggerating else 0.8
        same_sign = torch.sign(grad) == torch.sign(update)
        gains = torch.where(same_sign, gains * 0.8, gains + 0.2).clamp_min_(_MIN_GAIN)
        update = momentum * update - rate * gains * grad
        y = y + update
        y = y - y.mean(dim=0, keepdim=True)
    bar.close()
    embedding = y.double().numpy()
    kl = _kl_divergence(p, embedding)
    return TSNEResult(
        embedding=embedding, kl_divergence=kl, perplexity=used_perplexity, seed=seed, n_iter=n_iter, learning_rate=rate
    )
