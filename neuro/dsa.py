"""Dynamical Similarity Analysis (Ostrow, Eisen, Kozachkov & Fiete 2023), through the
``dsa-metric`` package (the only module that imports it; ``install.sh`` installs it).

DSA compares *dynamics* rather than geometry: each system's activity is delay-embedded
(``n_delays`` copies), a linear operator is fitted to the embedding's top ``rank``
components (HAVOK / dynamic mode decomposition), and two systems' operators are compared
up to a change of basis: ``min_C ‖A_x − C A_y C⁻¹‖`` over orthogonal C, as an angle
(``score_method="angular"``, the paper's; the package's 2.x default is ``"wasserstein"``).
The data-similarity paper (Liu, Yang & Cueva, appendix Fig. 8) used n_delays in {5..20}
and rank in {10..40}.

Inputs are ``[conditions, time, units]`` (each condition a trajectory) or ``[time, units]``.
"""
from __future__ import annotations

import warnings

import numpy as np

_INSTALL = "pip install dsa-metric==2.0.2 numpy==1.26.4 (or bash install.sh)"


def _package():
    try:
        import DSA
    except ModuleNotFoundError:
        raise ImportError(f"DSA needs the dsa-metric package: {_INSTALL}") from None
    return DSA


def _trajectories(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be [conditions, time, units] or [time, units], got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or Inf")
    return a - a.mean((0, 1), keepdims=True)


def dsa_distances(xs: list, ys: list | None = None, n_delays: int = 10, rank: int = 10,
                  score_method: str = "angular", iters: int = 1000, lr: float = 5e-3, seed: int = 0) -> np.ndarray:
    """Matrix of DSA distances between every x in ``xs`` and every y in ``ys`` (``ys=None``: xs pairwise)."""
    for opt, v, low in (("n_delays", n_delays, 1), ("rank", rank, 1), ("iters", iters, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{opt} must be an integer >= {low}, got {v!r}")
    if score_method not in ("angular", "euclidean", "wasserstein"):
        raise ValueError(f"score_method must be 'angular', 'euclidean' or 'wasserstein', got {score_method!r}")
    xs = [_trajectories(x, f"xs[{i}]") for i, x in enumerate(xs)]
    ys_ = None if ys is None else [_trajectories(y, f"ys[{i}]") for i, y in enumerate(ys)]
    steps = min(a.shape[1] for a in xs + (ys_ or []))
    if steps <= n_delays + 1:
        raise ValueError(f"n_delays = {n_delays} needs trajectories longer than {n_delays + 1} steps, got {steps}")
    width = min(a.shape[2] for a in xs + (ys_ or [])) * n_delays
    if rank > width:
        raise ValueError(f"rank = {rank} exceeds the delay embedding's width ({width} = units × n_delays)")
    DSA = _package()
    import torch
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        # each array is one system here, which is what DSA's cross-comparison warning asks us to confirm
        warnings.filterwarnings("ignore", message="When using cross-comparison", category=UserWarning)
        model = DSA.DSA(xs, ys_ if ys_ is not None else None, n_delays=n_delays, rank=rank,
                        score_method=score_method, iters=iters, lr=lr, verbose=False)
        scores = np.asarray(model.fit_score(), dtype=float)
    return scores.reshape(len(xs), len(xs) if ys_ is None else len(ys_))


def dsa_distance(x, y, **options) -> float:
    """DSA distance between two systems' trajectories (see ``dsa_distances`` for the options)."""
    return float(dsa_distances([x], [y], **options)[0, 0])
