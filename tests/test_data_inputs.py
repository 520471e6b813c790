"""Recording files and event times that used to fail with raw tracebacks or silent nonsense."""
import numpy as np
import pytest
from scipy.io import savemat

from neuro.data import Recording, align, load_recording


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".mat"])
def test_an_empty_file_is_named_as_empty(tmp_path, suffix):
    path = tmp_path / f"rec{suffix}"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        load_recording(path)


def test_a_one_condition_mat_file_keeps_its_condition_axis(tmp_path):
    act = np.random.default_rng(0).normal(size=(1, 9, 5))
    savemat(tmp_path / "one.mat", {"psth": act})
    rec = load_recording(tmp_path / "one.mat")
    np.testing.assert_array_equal(rec.activity, act)
    savemat(tmp_path / "flat.mat", {"psth": act[0]})          # a 2-D array is named as such
    with pytest.raises(ValueError, match=r"psth.*shape \(9, 5\)"):
        load_recording(tmp_path / "flat.mat")


def test_complex_activity_is_refused_not_truncated(tmp_path):
    act = np.random.default_rng(1).normal(size=(2, 6, 3)) * (1 + 0.5j)
    np.save(tmp_path / "c.npy", act)
    with pytest.raises(ValueError, match="complex"):
        load_recording(tmp_path / "c.npy")
    with pytest.raises(ValueError, match="complex"):
        Recording(act)


def test_non_finite_event_times_are_refused():
    act = np.zeros((1, 11, 2))
    with pytest.raises(ValueError, match="event 'go'"):
        Recording(act, events={"stim": 20.0, "go": float("nan")})
    rec = Recording(act, events={"stim": 20.0, "go": 80.0})
    with pytest.raises(ValueError, match="task event 'go'"):
        align(rec, np.array([0.0, 10.0]), {"stim": 0.0, "go": float("nan")})
