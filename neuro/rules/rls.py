"""Recursive least squares, shared by FORCE on every backend (Sussillo & Abbott 2009).

With ``P(0) = I/α`` and the a-priori error ``e = W r - y``, the update
``k = P r / (1 + rᵀ P r)``, ``P ← P - k rᵀ P``, ``W ← W - e kᵀ`` makes ``W`` after any number of
samples the ridge solution ``argmin_W Σ ‖W r_i - y_i‖² + α ‖W - W(0)‖²`` (a test holds this).
"""
from __future__ import annotations

import torch


class RLS:
    def __init__(self, n: int, alpha: float = 1.0, dtype=torch.float64, device="cpu"):
        if not alpha > 0:
            raise ValueError(f"RLS alpha (the prior P(0) = I/alpha) must be > 0, got {alpha!r}")
        self.P = torch.eye(n, dtype=dtype, device=device) / alpha

    @torch.no_grad()
    def step(self, W: torch.Tensor, r: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        """One update of ``W [n_out, n]`` from activity ``r [n]`` and a-priori error ``W r - y``."""
        Pr = self.P @ r
        k = Pr / (1.0 + r @ Pr)
        self.P -= torch.outer(k, Pr)
        return W - torch.outer(error, k)
