"""The whitening convention of the shape metric against netrep's published definition, and
inputs that used to give silent nonsense."""
import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes

from neuro.similarity import linear_cka, noise_floor, pairwise_distances, procrustes_distance


def _netrep_whiten(x, alpha, eigval_tol=1e-7):
    """netrep.utils.whiten (Williams et al. 2021), written from its documented formula: the
    eigenvalues of the *unnormalized* scatter XᵀX, clipped at eigval_tol, d = α + (1-α) λ^{-1/2},
    rescaled to preserve the total variance."""
    if alpha > 1 - eigval_tol:
        return x
    lam, v = np.linalg.eigh(x.T @ x)
    lam = np.maximum(lam, eigval_tol)
    d = alpha + (1 - alpha) * lam ** -0.5
    new_var = np.sum(alpha ** 2 * lam + 2 * alpha * (1 - alpha) * lam ** 0.5 + (1 - alpha) ** 2)
    d *= np.sqrt(np.sum(lam) / new_var)
    return x @ ((v * d) @ v.T)


def _netrep_linear_metric(x, y, alpha, scatter=True):
    """netrep LinearMetric(alpha, center_columns=True, zero_pad=True).fit(x, y).score(x, y):
    zero-pad to equal widths, center, whiten, align by orthogonal Procrustes, angular distance.
    ``scatter=False`` is the same with the covariance XᵀX/m in the whitening."""
    width = max(x.shape[1], y.shape[1])
    x = np.hstack([x, np.zeros((x.shape[0], width - x.shape[1]))])
    y = np.hstack([y, np.zeros((y.shape[0], width - y.shape[1]))])
    x, y = x - x.mean(0), y - y.mean(0)
    if scatter:
        xw, yw = _netrep_whiten(x, alpha), _netrep_whiten(y, alpha)
    else:
        m = x.shape[0]
        xw, yw = _netrep_whiten(x / np.sqrt(m), alpha) * np.sqrt(m), _netrep_whiten(y / np.sqrt(m), alpha) * np.sqrt(m)
    q = orthogonal_procrustes(xw, yw)[0]
    a, b = xw @ q, yw
    return float(np.arccos(np.clip(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1)))


def _pair(seed=0, m=90, nx=7, ny=11):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(m, 4))
    x = latent @ rng.normal(size=(4, nx)) + 0.5 * rng.normal(size=(m, nx))
    y = latent @ rng.normal(size=(4, ny)) + 0.5 * rng.normal(size=(m, ny)) + 3.0
    return x, y


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.8, 1.0])
def test_both_whitening_conventions_equal_netreps_formula(alpha):
    x, y = _pair()
    assert procrustes_distance(x, y, alpha, whiten="scatter") == pytest.approx(
        _netrep_linear_metric(x, y, alpha, scatter=True), abs=1e-9)
    assert procrustes_distance(x, y, alpha, whiten="covariance") == pytest.approx(
        _netrep_linear_metric(x, y, alpha, scatter=False), abs=1e-9)
    assert procrustes_distance(x, y, alpha) == procrustes_distance(x, y, alpha, whiten="covariance")   # the default


def test_the_conventions_agree_at_alpha_0_and_1_and_differ_in_between():
    x, y = _pair(1)
    for alpha in (0.0, 1.0):
        assert procrustes_distance(x, y, alpha, whiten="scatter") == pytest.approx(
            procrustes_distance(x, y, alpha, whiten="covariance"), abs=1e-10)
    gap = procrustes_distance(x, y, 0.5, whiten="scatter") - procrustes_distance(x, y, 0.5, whiten="covariance")
    assert abs(gap) > 1e-3
    assert pairwise_distances([x, y], 0.5, whiten="scatter")[0, 1] == pytest.approx(
        procrustes_distance(x, y, 0.5, whiten="scatter"), abs=1e-12)


def test_unknown_whitening_is_a_clear_error():
    x, y = _pair()
    with pytest.raises(ValueError, match="whiten must be"):
        procrustes_distance(x, y, 0.5, whiten="sphere")


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_huge_and_tiny_scales_give_the_distance_of_the_unscaled_data(alpha):
    """The overall scale is taken out before any product: X·1e200 used to overflow XᵀX to inf (π/2)."""
    x, y = _pair(2)
    for whiten in ("covariance", "scatter"):
        expected = procrustes_distance(x, y, alpha, whiten=whiten)
        # the covariance convention at 0 < α < 1 depends on the data's scale by definition; the
        # invariant is: scaling both the data and the convention's reference scale changes nothing
        assert procrustes_distance(x * 1e200, y, alpha, whiten=whiten) == pytest.approx(
            _reference_scaled(x, y, alpha, whiten, 1e200), abs=1e-9)
        assert procrustes_distance(x, y, alpha, whiten=whiten) == pytest.approx(expected, abs=1e-12)
    assert procrustes_distance(x * 1e200, y * 1e-200, 1.0) == pytest.approx(procrustes_distance(x, y, 1.0), abs=1e-9)
    assert procrustes_distance(x * 1e200, y * 1e-200, 0.0) == pytest.approx(procrustes_distance(x, y, 0.0), abs=1e-9)


def _reference_scaled(x, y, alpha, whiten, s):
    """The partially whitened representation of s·x is ∝ x (α s I + (1-α) (XᵀX/k)^{-1/2}): computed
    here with the scale kept apart, so nothing overflows."""
    def rep(a, scale):
        a = a - a.mean(0)
        k = a.shape[0] if whiten == "covariance" else 1.0
        lam, v = np.linalg.eigh(a.T @ a / k)
        inv = (v / np.sqrt(lam)) @ v.T
        w = a @ (alpha * scale * np.eye(a.shape[1]) / (alpha * scale + 1 - alpha)
                 + (1 - alpha) / (alpha * scale + 1 - alpha) * inv)
        return w / np.linalg.norm(w)
    a, b = rep(x, s), rep(y, 1.0)
    return float(np.arccos(np.clip(np.linalg.svd(a.T @ b, compute_uv=False).sum(), -1, 1)))


def test_constant_data_and_empty_noise_floors_are_errors_not_nan():
    x, y = _pair(3)
    with pytest.raises(ValueError, match="constant"):
        linear_cka(np.ones_like(x), y)
    with pytest.raises(ValueError, match="repeats must be"):
        noise_floor(np.hstack([x, y]), repeats=0)
    with pytest.raises(ValueError, match="n_sample must be"):
        noise_floor(np.hstack([x, y]), n_sample=0)
    assert linear_cka(x, y) == pytest.approx(linear_cka(x * 1e200, y), rel=1e-9)
