"""Recursive least squares, the one RLS behind FORCE and full-FORCE on every backend.

Sussillo & Abbott 2009 (Eqs. 4-5 and Methods): with ``P(0) = I/α`` and the a-priori
error ``e = W r - y``,

    k = P r / (1 + rᵀ P r),    P ← P - k (P r)ᵀ,    W ← W - e kᵀ,

so that after any number of samples ``W`` is the ridge solution
``argmin_W Σ_i ‖W r_i - y_i‖² + α ‖W - W(0)‖²`` and ``P = (Σ_i r_i r_iᵀ + α I)⁻¹``
(a test holds both, in float64).  Every row of ``W`` sees the same presynaptic ``r``,
so one ``P`` serves any number of rows: FORCE's readout rows, and in full-FORCE every
row of the recurrent matrix together with the readout (DePasquale et al. 2018, whose
demo code shares one P the same way).  Leading dimensions batch independent problems
(``P [..., n, n]``, ``r [..., n]``, ``W [..., m, n]``, ``e [..., m]``), e.g. an ensemble.
"""
from __future__ import annotations

import torch


class RLS:
    """Running inverse correlation matrix ``P`` of the presynaptic activity.

    ``RLS(n, alpha)`` starts from ``P = I/alpha``; ``batch_shape=(E,)`` keeps E
    independent matrices.  ``step(W, r, error)`` returns the updated ``W``.
    """

    def __init__(self, n: int, alpha: float = 1.0, dtype=torch.float64, device="cpu", batch_shape: tuple = ()):
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"RLS n (presynaptic units) must be an integer >= 1, got {n!r}")
        if not alpha > 0:
            raise ValueError(f"RLS alpha (the prior P(0) = I/alpha) must be > 0, got {alpha!r}")
        eye = torch.eye(n, dtype=dtype, device=device) / alpha
        self.P = eye.expand(*batch_shape, n, n).clone()
        self.n = n

    @torch.no_grad()
    def gain(self, r: torch.Tensor) -> torch.Tensor:
        """Update ``P`` with one sample ``r [..., n]`` and return the gain ``k = P r / (1 + rᵀ P r)``
        (computed with the P before the sample, as in Sussillo & Abbott's code)."""
        if r.shape[-1] != self.n:
            raise ValueError(f"RLS activity must have {self.n} entries in its last dimension, got shape "
                             f"{tuple(r.shape)}")
        Pr = torch.matmul(self.P, r.unsqueeze(-1)).squeeze(-1)
        k = Pr / (1.0 + (r * Pr).sum(-1, keepdim=True))
        self.P -= k.unsqueeze(-1) * Pr.unsqueeze(-2)
        return k

    @torch.no_grad()
    def step(self, W: torch.Tensor, r: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        """One update of ``W [..., m, n]`` from activity ``r [..., n]`` and the a-priori error
        ``W r - y`` ``[..., m]``; returns the new ``W`` (the input is not modified)."""
        k = self.gain(r)
        return W - error.unsqueeze(-1) * k.unsqueeze(-2)
