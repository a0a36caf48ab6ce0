"""How well labelled points separate, in NumPy: the silhouette score and leave-one-out k-NN accuracy.

Both work on Euclidean distances in the space given (for ``blindsr analyze idr``: the IDR space itself, not the
t-SNE plane, so the number does not depend on the embedding's randomness).

* silhouette (Rousseeuw 1987): per point ``s = (b - a) / max(a, b)`` with ``a`` its mean distance to the other
  points of its label and ``b`` the smallest mean distance to the points of another label; a point alone in its
  label scores 0. The score is the mean over points, in [-1, 1]: near 1 compact, well-apart groups; near 0
  overlapping ones.
* k-NN accuracy: each point is classified by the majority label of its k nearest other points (ties: the label
  of the nearest among the tied labels); the score is the fraction classified correctly. Chance level is about
  the share of the largest label.

>>> import numpy as np
>>> x = np.array([[0.0], [1.0], [10.0], [11.0]])
>>> labels = np.array([0, 0, 1, 1])
>>> round(silhouette_score(x, labels), 4), knn_accuracy(x, labels, k=1)
(0.8997, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from blindsr.analysis.tsne import squared_distances

__all__ = ["Separability", "knn_accuracy", "measure_separability", "silhouette_score"]


def _prepare(x: ArrayLike, labels: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    data = np.asarray(x, dtype=np.float64)
    lab = np.asarray(labels)
    if data.ndim != 2:
        raise ValueError(f"x must be (N, D), got shape {data.shape}")
    if lab.shape != (data.shape[0],):
        raise ValueError(f"labels must have shape ({data.shape[0]},), got {lab.shape}")
    if data.shape[0] < 2:
        raise ValueError("need at least 2 points")
    _, codes = np.unique(lab, return_inverse=True)
    return data, codes.astype(np.int64)


def silhouette_score(x: ArrayLike, labels: ArrayLike) -> float:
    """Mean silhouette of the points `x` (N, D) with `labels` (N,), Euclidean; needs 2 <= #labels < N.

    >>> silhouette_score([[0.0], [2.0], [4.0], [6.0]], [0, 1, 0, 1])
    -0.25
    """
    data, codes = _prepare(x, labels)
    n_labels = int(codes.max()) + 1
    if not 2 <= n_labels < data.shape[0]:
        raise ValueError(f"the silhouette needs 2 <= number of labels < N, got {n_labels} labels for {len(codes)}")
    dist = np.sqrt(squared_distances(data))
    onehot = np.zeros((len(codes), n_labels))
    onehot[np.arange(len(codes)), codes] = 1.0
    sums = dist @ onehot  # (N, L): total distance from each point to each label's points
    counts = onehot.sum(axis=0)
    own_count = counts[codes] - 1.0
    a = np.divide(sums[np.arange(len(codes)), codes], own_count, out=np.zeros(len(codes)), where=own_count > 0)
    means = sums / counts[None, :]
    means[np.arange(len(codes)), codes] = np.inf
    b = means.min(axis=1)
    denom = np.maximum(a, b)
    s = np.divide(b - a, denom, out=np.zeros(len(codes)), where=denom > 0)
    s[own_count == 0] = 0.0
    return float(s.mean())


def knn_accuracy(x: ArrayLike, labels: ArrayLike, *, k: int = 5) -> float:
    """Leave-one-out accuracy of the k-nearest-neighbour vote (Euclidean; ties to the nearest tied label).

    >>> knn_accuracy([[0.0], [0.1], [5.0], [5.1], [0.2]], ["a", "a", "b", "b", "b"], k=1)
    0.8
    """
    data, codes = _prepare(x, labels)
    n = data.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, N - 1 = {n - 1}], got {k}")
    d2 = squared_distances(data)
    np.fill_diagonal(d2, np.inf)
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    neighbour_labels = codes[order]  # (N, k), nearest first
    n_labels = int(codes.max()) + 1
    votes = np.zeros((n, n_labels), dtype=np.int64)
    np.add.at(votes, (np.repeat(np.arange(n), k), neighbour_labels.reshape(-1)), 1)
    best = votes.max(axis=1, keepdims=True)
    tied = votes == best  # (N, L)
    # among tied labels, the one met first in nearest-first order
    first_tied = tied[np.arange(n)[:, None], neighbour_labels]  # (N, k): is the j-th neighbour's label tied
    predicted = neighbour_labels[np.arange(n), first_tied.argmax(axis=1)]
    return float((predicted == codes).mean())


@dataclass(frozen=True, slots=True)
class Separability:
    """Both scores of labelled points, and the k-NN chance level.

    Attributes:
        silhouette: mean silhouette in [-1, 1].
        knn_accuracy: leave-one-out k-NN accuracy in [0, 1].
        k: the k used.
        chance: the share of the most frequent label (what always guessing it scores).
    """

    silhouette: float
    knn_accuracy: float
    k: int
    chance: float

    def summary(self) -> str:
        """One line, e.g. ``5-NN accuracy 93.8 % (chance 12.5 %), silhouette 0.412``."""
        return (
            f"{self.k}-NN accuracy {100 * self.knn_accuracy:.1f} % (chance {100 * self.chance:.1f} %), "
            f"silhouette {self.silhouette:.3f}"
        )


def measure_separability(x: ArrayLike, labels: ArrayLike, *, k: int = 5) -> Separability:
    """The silhouette and the k-NN accuracy of `x` (N, D) with `labels` (N,); k is capped at N - 1."""
    data, codes = _prepare(x, labels)
    k_used = min(k, data.shape[0] - 1)
    counts = np.bincount(codes)
    return Separability(
        silhouette=silhouette_score(data, codes),
        knn_accuracy=knn_accuracy(data, codes, k=k_used),
        k=k_used,
        chance=float(counts.max() / counts.sum()),
    )
