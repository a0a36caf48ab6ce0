"""Exact t-SNE and the separability scores of blindsr.analysis (NumPy): calibration, separation, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from blindsr.analysis.separability import knn_accuracy, measure_separability, silhouette_score
from blindsr.analysis.tsne import conditional_probabilities, joint_probabilities, run_tsne, squared_distances


def _two_clusters(n: int = 20, dim: int = 10, gap: float = 12.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, (n, dim))
    b = rng.normal(0.0, 1.0, (n, dim))
    b[:, 0] += gap
    return np.concatenate([a, b]), np.repeat([0, 1], n)


def test_perplexity_calibration_hits_the_target_entropy() -> None:
    x = np.random.default_rng(1).normal(size=(30, 5)) * 50.0  # large distances: beta must shrink a lot
    for perplexity in (3.0, 8.0):
        p = conditional_probabilities(squared_distances(x), perplexity=perplexity)
        assert np.allclose(p.sum(axis=1), 1.0) and np.all(np.diag(p) == 0)
        safe = np.where(p > 0, p, 1.0)
        entropy = -(p * np.log(safe)).sum(axis=1)
        assert np.allclose(np.exp(entropy), perplexity, rtol=1e-4)
    joint = joint_probabilities(squared_distances(x), perplexity=5.0)
    assert np.allclose(joint, joint.T) and abs(joint.sum() - 1.0) < 1e-6
    with pytest.raises(ValueError, match="perplexity"):
        conditional_probabilities(squared_distances(x), perplexity=30.0)


def test_tsne_separates_two_gaussian_clusters() -> None:
    x, labels = _two_clusters()
    result = run_tsne(x, seed=3, n_iter=400)
    emb = result.embedding
    assert emb.shape == (40, 2) and np.isfinite(emb).all()
    assert result.perplexity == pytest.approx(13.0) and result.seed == 3  # capped at (N - 1) / 3
    assert knn_accuracy(emb, labels, k=5) == 1.0
    assert silhouette_score(emb, labels) > 0.5
    # the clusters are apart in the plane: the centroid gap exceeds the spread of either cluster several times
    c0, c1 = emb[labels == 0].mean(axis=0), emb[labels == 1].mean(axis=0)
    spread = max(emb[labels == k].std(axis=0).max() for k in (0, 1))
    assert np.linalg.norm(c0 - c1) > 3 * spread
    assert result.kl_divergence < 1.0


def test_tsne_is_seeded() -> None:
    x, _ = _two_clusters(n=8)
    a = run_tsne(x, seed=0, n_iter=60)
    b = run_tsne(x, seed=0, n_iter=60)
    c = run_tsne(x, seed=1, n_iter=60)
    assert np.array_equal(a.embedding, b.embedding)
    assert not np.allclose(a.embedding, c.embedding)


def test_tsne_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        run_tsne(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        run_tsne(np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        run_tsne(np.zeros(5))


def test_silhouette_and_knn_by_hand() -> None:
    # 1-D: a = distance to the partner, b = mean distance to the other pair
    x = np.array([[0.0], [1.0], [10.0], [11.0]])
    expected = np.mean([9.5 / 10.5, 8.5 / 9.5, 8.5 / 9.5, 9.5 / 10.5])
    assert silhouette_score(x, [0, 0, 1, 1]) == pytest.approx(expected)
    assert silhouette_score(x, ["a", "b", "a", "b"]) < 0
    # a singleton label scores 0 for its point
    assert silhouette_score([[0.0], [1.0], [5.0]], [0, 0, 1]) == pytest.approx((0.8 + 0.75 + 0.0) / 3)
    # ties go to the label of the nearest tied neighbour: point 0's 2 neighbours are 1 (label b) then 2 (label a)
    assert knn_accuracy([[0.0], [1.0], [-2.0], [10.0]], ["b", "b", "a", "a"], k=2) == 0.5
    scores = measure_separability(x, [0, 0, 1, 1], k=9)
    assert scores.k == 3 and scores.chance == 0.5 and "3-NN accuracy" in scores.summary()
    with pytest.raises(ValueError, match="labels"):
        silhouette_score(x, [0, 0, 0, 0])
    with pytest.raises(ValueError, match="shape"):
        knn_accuracy(x, [0, 1])


def test_random_labels_score_near_chance() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    labels = rng.integers(0, 4, 200)
    assert abs(silhouette_score(x, labels)) < 0.1
    assert knn_accuracy(x, labels, k=5) < 0.45
