"""Representational similarity between models and neural data.

Representations are matrices ``[samples, units]`` (samples = conditions × time);
different unit counts are allowed.  All measures center the columns first.

- ``procrustes_distance`` — the angular shape metric of Williams et al. 2021
  ("Generalized shape metrics on neural representations"), the measure of the
  data-similarity paper (netrep's ``LinearMetric(alpha, center_columns=True)``):
  each representation is partially whitened, ``X_α = X (α I + (1-α) (XᵀX/k)^{-1/2})``,
  scaled to unit Frobenius norm, and
  ``θ = arccos(‖X_αᵀ Y_α‖_*)`` (nuclear norm = max over rotations of ⟨X_α, Y_α Q⟩).
  α = 1 is the angular Procrustes distance, α = 0 CCA-like.  It is a metric:
  symmetric, 0 for a rotated and scaled copy, π/2 for orthogonal subspaces, and
  it obeys the triangle inequality.

  The whitening convention (``whiten=``) matters only for 0 < α < 1, where the
  balance between the identity and the whitening term depends on the data's scale:
  ``"covariance"`` (the default) whitens with the covariance ``XᵀX/m`` (m samples),
  so the result does not change with the number of samples (conditions × time
  points) at which two representations are compared; ``"scatter"`` whitens with the
  unnormalized ``XᵀX``, netrep's convention (``netrep.utils.whiten``), to reproduce
  numbers computed with netrep.  Both give the same distance at α = 0 and α = 1.
  The overall scale is factored out before any product, so data in any unit (or
  ``X·1e200``) neither overflows nor underflows.
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


WHITENING = ("covariance", "scatter")


def _scaled(x) -> tuple[np.ndarray, float]:
    """``(u, s)`` with ``x - mean = s·u`` and ``‖u‖_F = 1``, computed without overflow or underflow."""
    a = np.asarray(x, dtype=float)
    peak = float(np.max(np.abs(a))) if a.size else 0.0
    if not np.isfinite(peak):
        raise ValueError("a representation contains NaN or Inf")
    if peak == 0:
        raise ValueError("a representation is constant over samples; its shape is undefined")
    u = as_representation(a / peak)
    norm = float(np.linalg.norm(u))
    if norm == 0:
        raise ValueError("a representation is constant over samples; its shape is undefined")
    return u / norm, peak * norm


def _whiten(u: np.ndarray, scale: float, alpha: float, whiten: str) -> np.ndarray:
    """``x (α I + (1-α) (xᵀx/k)^{-1/2})`` up to a positive factor, for ``x = scale·u``, ``‖u‖ = 1``:
    with ``S = uᵀu`` that is ``u (α·scale·I + (1-α)·√k·S^{-1/2})``, divided by ``α·scale + (1-α)·√k``."""
    if alpha >= 1.0:
        return u
    k = u.shape[0] if whiten == "covariance" else 1.0
    vals, vecs = np.linalg.eigh(u.T @ u)
    keep = vals > 1e-12 * max(vals.max(), 1e-300)
    inv_sqrt = (vecs[:, keep] / np.sqrt(vals[keep])) @ vecs[:, keep].T
    if alpha <= 0.0:
        return u @ inv_sqrt
    ratio = (1 - alpha) * np.sqrt(k) / (alpha * scale)     # weight of the whitening term vs the identity
    if not np.isfinite(ratio):                             # scale underflowed: the whitening term dominates
        return u @ inv_sqrt
    return (u + ratio * (u @ inv_sqrt)) / (1.0 + ratio)


def _check_whiten(whiten: str) -> None:
    if whiten not in WHITENING:
        raise ValueError(f"whiten must be one of {WHITENING} (covariance XᵀX/m, or netrep's unnormalized XᵀX), "
                         f"got {whiten!r}")


def _normalized(x, alpha: float, whiten: str = "covariance") -> np.ndarray:
    x = _whiten(*_scaled(x), alpha, whiten)
    norm = np.linalg.norm(x)
    if norm == 0:
        raise ValueError("a representation is constant over samples; its shape is undefined")
    return x / norm


def procrustes_distance(x, y, alpha: float = 1.0, whiten: str = "covariance") -> float:
    """Angular (partial-whitening) Procrustes distance in [0, π/2], in radians.

    ``whiten``: ``"covariance"`` (default; ``XᵀX/m``) or ``"scatter"`` (netrep's ``XᵀX``); the two
    differ only for 0 < alpha < 1 (see the module's docstring)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    _check_whiten(whiten)
    a, b = _normalized(x, alpha, whiten), _normalized(y, alpha, whiten)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"representations must have the same samples (conditions × time), "
                         f"got {a.shape[0]} and {b.shape[0]}")
    nuclear = np.linalg.svd(a.T @ b, compute_uv=False).sum()
    return float(np.arccos(np.clip(nuclear, -1.0, 1.0)))


def linear_cka(x, y) -> float:
    """Linear CKA: ``‖YᵀX‖_F² / (‖XᵀX‖_F ‖YᵀY‖_F)`` on centered representations, in [0, 1]."""
    (a, _), (b, _) = _scaled(x), _scaled(y)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"representations must have the same samples, got {a.shape[0]} and {b.shape[0]}")
    return float(np.linalg.norm(b.T @ a) ** 2 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)))


def pairwise_distances(representations: list, alpha: float = 1.0, whiten: str = "covariance") -> np.ndarray:
    """Symmetric matrix of Procrustes distances between all pairs."""
    _check_whiten(whiten)
    normalized = [_normalized(r, alpha, whiten) for r in representations]
    n = len(normalized)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            nuclear = np.linalg.svd(normalized[i].T @ normalized[j], compute_uv=False).sum()
            d[i, j] = d[j, i] = np.arccos(np.clip(nuclear, -1.0, 1.0))
    return d


def noise_floor(data, model=None, n_sample: int | None = None, repeats: int = 20, alpha: float = 1.0,
                seed: int = 0, whiten: str = "covariance") -> dict:
    """Distance between disjoint random halves of the recorded neurons (the noise floor) and,
    given a model, between the model's units and the data's at the same sample size.

    ``data`` / ``model``: ``[conditions, time, neurons]`` or ``[samples, neurons]``.
    Returns mean and std over ``repeats`` random splits.
    """
    d = as_representation(data)
    if n_sample is None:
        n_sample = d.shape[1] // 2
    if isinstance(n_sample, bool) or not isinstance(n_sample, (int, np.integer)) or n_sample < 1:
        raise ValueError(f"n_sample must be an integer >= 1 (neurons per half), got {n_sample!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1 (random splits), got {repeats!r}")
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
        floor.append(procrustes_distance(half1, half2, alpha, whiten))
        if m is not None:
            units = rng.choice(m.shape[1], n_sample, replace=False)
            model_data.append(procrustes_distance(m[:, units], half1, alpha, whiten))
    out = {"noise_floor": float(np.mean(floor)), "noise_floor_std": float(np.std(floor)), "n_sample": n_sample}
    if m is not None:
        out.update(model_to_data=float(np.mean(model_data)), model_to_data_std=float(np.std(model_data)))
    return out
