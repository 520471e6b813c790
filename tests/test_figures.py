"""Figures of the FORCE, reward, quantization and compare outputs: data written as CSV beside each
figure, legends beside the axes (not over the traces), distinct colours, diverged runs marked."""
import csv
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from neuro import plots


@pytest.fixture
def saved(monkeypatch):
    """The figures handed to neuro.plots.save, by file name (still open, to inspect)."""
    figures = {}

    def keep(fig, path):
        figures[Path(path).name] = fig
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(b"")
        return Path(path)
    monkeypatch.setattr(plots, "save", keep)
    yield figures
    for fig in figures.values():
        plots.plt.close(fig)


def _legend_outside(ax):
    leg = ax.get_legend()
    fig = ax.figure
    fig.canvas.draw()
    box, axbox = leg.get_window_extent(), ax.get_window_extent()
    return box.x0 >= axbox.x1 - 1          # entirely to the right of the axes


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_force_error_vs_size_marks_a_diverged_run_and_writes_its_data(tmp_path, saved):
    from neuro.studies import force
    rows = [{"setup": "pulse_chirp", "rule": "force", "N": n, "test_error_pct": e}
            for n, e in ((100, 85.0), (200, float("nan")), (500, 0.002))]
    rows.append({"setup": "pulse_chirp", "rule": "full_force", "N": 200, "test_error_pct": 0.004})
    force.error_vs_size(rows, tmp_path / "error_vs_size.png")
    data = _rows(tmp_path / "error_vs_size.csv")
    assert [(d["rule"], int(d["N"]), d["diverged"]) for d in data] == [
        ("full_force", 200, "0"), ("force", 100, "0"), ("force", 200, "1"), ("force", 500, "0")]
    ax = saved["error_vs_size.png"].axes[0]
    assert any(t.get_text() == "diverged" for t in ax.texts)
    assert _legend_outside(ax) and ax.get_ylabel() and ax.get_xlabel() == "network size N (units)"


def test_force_traces_give_each_output_its_colour_and_a_csv(tmp_path, saved):
    from neuro.studies import force
    t = np.linspace(0, 1, 50)
    targets = np.stack([np.sin(t * k) for k in range(1, 6)], 1)
    h = SimpleNamespace(test_targets=targets, test_outputs=targets + 0.01, test_nmse=1e-4)
    traces = {"sum_of_sines": h, "melody": h, "spiking_sine": h}
    cfg = force.Config(full_force_sizes=[], force_sizes=[])
    force.plot([], traces, cfg, tmp_path)
    ax = saved["melody.png"].axes[0]
    thin = [line for line in ax.get_lines() if line.get_linewidth() == 1]
    assert len({tuple(line.get_color()) for line in thin}) == 5            # five outputs, five colours
    assert _legend_outside(ax) and "(a.u.)" in ax.get_ylabel()
    data = _rows(tmp_path / "melody.csv")
    assert list(data[0]) == ["time_ms"] + [f"target_{j}" for j in range(1, 6)] + [f"output_{j}" for j in range(1, 6)]
    assert float(data[7]["output_3"]) == pytest.approx(targets[7, 2] + 0.01)


def test_reward_curves_have_a_seed_legend_and_their_running_means_in_csv(tmp_path, saved):
    from neuro.studies import reward
    rng = np.random.default_rng(0)
    correct = [(rng.random(600) < 0.7).astype(float) for _ in range(3)]
    curves = {"2af / reinforce": {"fraction correct": [reward._running(c, 200) for c in correct]}}
    example = {"2af / reinforce": SimpleNamespace(reward=correct[0], baseline=correct[0] * 0.5,
                                                  value=np.full(600, np.nan))}
    reward._plots(curves, example, tmp_path)
    ax = saved["learning_curves.png"].axes[-1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["seed 0", "seed 1", "seed 2", "chance"]
    assert _legend_outside(ax)
    data = [d for d in _rows(tmp_path / "learning_curves.csv") if d["seed"] == "1"]
    expected = np.convolve(correct[1], np.ones(200) / 200, mode="valid")
    assert len(data) == len(expected) and float(data[10]["fraction_correct"]) == pytest.approx(expected[10])
    assert {d["series"] for d in _rows(tmp_path / "rewards_baselines.csv")} == {"reward", "baseline"}


def test_quantization_figures_have_no_float64_tick_on_the_bits_axis(tmp_path, saved):
    from neuro.studies import quantization as q
    cfg = q.Config(gains=[0.5, 2.0], bits=[q.FULL_PRECISION, 8, 4])
    rows = [{"gain": g, "bits": b, "precision": p, "accuracy": 0.1 * b + g + s, "lambda_max": -g,
             "seed": s} for g in cfg.gains for b in cfg.bits for p in ("float", "fixed") for s in (0, 1)]
    q.plot(rows, cfg, tmp_path)
    ax = saved["accuracy_vs_bits.png"].axes[0]
    assert list(ax.get_xticks()) == [8, 4]
    assert _legend_outside(ax)
    data = _rows(tmp_path / "accuracy_vs_bits.csv")
    full = [d for d in data if d["bits"] == "float64" and d["gain"] == "2.0"]
    assert len(full) == 1 and float(full[0]["accuracy"]) == pytest.approx(0.1 * 32 + 2.0 + 0.5)


def test_mark_diverged_annotates_the_top_edge():
    fig, ax = plots.plt.subplots()
    ax.plot([0, 1], [0, 1])
    plots.mark_diverged(ax, 0.5, "C1")
    top = ax.get_ylim()[1]
    x = [line for line in ax.get_lines() if line.get_marker() == "x"][0]
    assert x.get_xdata()[0] == 0.5 and math.isclose(x.get_ydata()[0], top)
    assert [t.get_text() for t in ax.texts] == ["diverged"]
    plots.plt.close(fig)
