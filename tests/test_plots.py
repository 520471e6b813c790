"""Figures: diverged runs are marked (never silently off the axis) and every figure's data is a CSV."""
import csv
import math

import numpy as np

from neuro import plots


def test_learning_curves_mark_diverged_runs_and_write_their_data(tmp_path):
    good = [list(np.exp(-np.arange(50) / 20) + 0.01 * i) for i in range(2)]
    exploding = list(np.exp(np.arange(50) / 5))                  # ends e^10 ≈ 2e4 x its start
    stopped = [1.0, 0.9, float("nan")]
    path = plots.learning_curves({"a": {"g = 0.5": good, "g = 2.0": [good[0], exploding, stopped]}},
                                 tmp_path / "lc.png")
    assert path.exists()
    rows = list(csv.DictReader(open(tmp_path / "lc.csv")))
    assert len(rows) == 50 * 4 + 3
    flags = {(r["line"], r["run"]): r["diverged"] for r in rows}
    assert flags == {("g = 0.5", "0"): "0", ("g = 0.5", "1"): "0", ("g = 2.0", "0"): "0",
                     ("g = 2.0", "1"): "1", ("g = 2.0", "2"): "1"}
    assert float(rows[-1]["value"]) != float(rows[-1]["value"])      # NaN kept as NaN
    last = [r for r in rows if r["line"] == "g = 2.0" and r["run"] == "1"][-1]
    assert float(last["value"]) == math.exp(49 / 5)


def test_before_after_writes_every_run(tmp_path):
    plots.before_after([0.5, 1.0], {"p": ([[-0.2, -0.25], [0.0]], [[-0.1, -0.12], [0.02]])}, tmp_path / "ba.png",
                       ylabel="largest Lyapunov exponent (per step)")
    rows = list(csv.DictReader(open(tmp_path / "ba.csv")))
    assert [(r["gain"], r["when"], float(r["value"])) for r in rows] == [
        ("0.5", "before", -0.2), ("0.5", "before", -0.25), ("1.0", "before", 0.0),
        ("0.5", "after", -0.1), ("0.5", "after", -0.12), ("1.0", "after", 0.02)]
