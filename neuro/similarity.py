"""Representational similarity between models and neural data.

Representations are matrices ``[samples, units]`` (samples = conditions × time);
different unit counts are allowed.  All measures center the columns first.

- ``procrustes_distance`` — the angular shape metric of Williams et al. 2021
  ("Generalized shape metrics on neural representations"), the measure of the
  data-similarity paper (netrep's ``LinearMetric(alpha, center_columns=True)``):
  each representation is partially whitened, ``X_α = X (α I + (1-α) (XᵀX/n)^{-1/2})``,
  scaled to unit Frobenius norm, and
  ``θ = arccos(‖X_αᵀ Y_α‖_*)`` (nuclear norm = max over rotations of ⟨X_α, Y_α Q⟩).
  α = 1 is the angular Procrustes distance, α = 0 CCA-like.  It is a metric:
  symmetric, 0 for a rotated and scaled copy, π/2 for orthogonal subspaces, and
  it obeys the triangle inequality.
- ``linear_cka`` — centered kernel alignment (Kornblith et al. 2019).
- ``pairwise_distances`` — the matrix of distances between many representations.
- ``noise_floor`` — the data-to-data distance of disjoint halves of the recorded
  neurons, with the model-vs-data distance at the same sample size (the
  data-similarity paper's Appendix B.5 procedure).
"""
from __future__ import annotations

import numpy as np


def as_representation(x) -> np.ndarray:
    """``[conditions, time, units]`` or ``[samples, units]`` → centered float64 ``[samples, units]``."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 3:
        a = a.reshape(-1, a.shape[-1])
    if a.ndim != 2:
        raise ValueError(f"a representation must be [samples, units] or [conditions, time, units], "
                         f"got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("a representation contains NaN or Inf")
    return a - a.mean(0, keepdims=True)


def _whiten(x: np.ndarray, alpha: float) -> np.ndarray:
    if alpha >= 1.0:
        return x
    cov = x.T @ x / x.shape[0]
    vals, vecs = np.linalg.eigh(cov)
    keep = vals > 1e-12 * max(vals.max(), 1e-300)
    inv_sqrt = (vecs[:, keep] / np.sqrt(vals[keep])) @ vecs[:, keep].T
    return x @ (alpha * np.eye(x.shape[1]) + (1 - alpha) * inv_sqrt)


def _normalized(x, alpha: float) -> np.ndarray:
    x = _whiten(as_representation(x), alpha)
    norm = np.linalg.norm(x)
    if norm == 0:
        raise ValueError("a representation is constant over samples; its shape is undefined")
    return x / norm


def procrustes_distance(x, y, alpha: float = 1.0) -> float:
    """Angular (partial-whitening) Procrustes distance in [0, π/2], in radians."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    a, b = _normalized(x, alpha), _normalized(y, alpha)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"representations must have the same samples (conditions × time), "
                         f"got {a.shape[0]} and {b.shape[0]}")
    nuclear = np.linalg.svd(a.T @ b, compute_uv=False).sum()
    return float(np.arccos(np.clip(nuclear, -1.0, 1.0)))


def linear_cka(x, y) -> float:
    """Linear CKA: ``‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F)`` on centered representations, in [0, 1]."""
    a, b = as_representation(x), as_representation(y)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"representations must have the same samples, got {a.shape[0]} and {b.shape[0]}")
    return float(np.linalg.norm(b.T @ a) ** 2 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)))


def pairwise_distances(representations: list, alpha: float = 1.0) -> np.ndarray:
    """Symmetric matrix of Procrustes distances between all pairs."""
    normalized = [_normalized(r, alpha) for r in representations]
    n = len(normalized)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            nuclear = np.linalg.svd(normalized[i].T @ normalized[j], compute_uv=False).sum()
            d[i, j] = d[j, i] = np.arccos(np.clip(nuclear, -1.0, 1.0))
    return d


def noise_floor(data, model=None, n_sample: int | None = None, repeats: int = 20, alpha: float = 1.0,
                seed: int = 0) -> dict:
    """Distance between disjoint random halves of the recorded neurons (the noise floor) and,
    given a model, between the model's units and the data's at the same sample size.

    ``data`` / ``model``: ``[conditions, time, neurons]`` or ``[samples, neurons]``.
    Returns mean and std over ``repeats`` random splits.
    """
    d = as_representation(data)
    n_sample = n_sample or d.shape[1] // 2
    if 2 * n_sample > d.shape[1]:
        raise ValueError(f"n_sample = {n_sample} needs at least {2 * n_sample} recorded neurons, "
                         f"the data has {d.shape[1]}")
    m = None if model is None else as_representation(model)
    if m is not None and m.shape[1] < n_sample:
        raise ValueError(f"the model has {m.shape[1]} units, fewer than n_sample = {n_sample}")
    rng = np.random.default_rng(seed)
    floor, model_data = [], []
    for _ in range(repeats):
        perm = rng.permutation(d.shape[1])
        half1, half2 = d[:, perm[:n_sample]], d[:, perm[n_sample:2 * n_sample]]
        floor.append(procrustes_distance(half1, half2, alpha))
        if m is not None:
            units = rng.choice(m.shape[1], n_sample, replace=False)
            model_data.append(procrustes_distance(m[:, units], half1, alpha))
    out = {"noise_floor": float(np.mean(floor)), "noise_floor_std": float(np.std(floor)), "n_sample": n_sample}
    if m is not None:
        out.update(model_to_data=float(np.mean(model_data)), model_to_data_std=float(np.std(model_data)))
    return out
