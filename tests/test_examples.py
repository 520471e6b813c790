"""The examples run as written, at reduced sizes (``--small``), and say what they claim."""
import csv
import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rate_vs_lif(tmp_path, capsys):
    r = _load("rate_vs_lif").main(["--small", "--out", str(tmp_path / "cmp")])
    assert (r["dt_ms"], r["lif_dt_ms"]) == (20.0, 10.0)
    assert (tmp_path / "cmp" / "lif" / "checkpoint.pt").exists() and (tmp_path / "cmp" / "compare.png").exists()
    assert "| lif |" in capsys.readouterr().out


@pytest.mark.lava
def test_lif_to_chips(tmp_path):
    pytest.importorskip("lava")
    r = _load("lif_to_chips").main(["--small", "--out", str(tmp_path)])
    assert r["spikes"] > 0
    assert r["nir_error"] < 1e-6 and r["brian2_equal"] and r["lava_equal"]
    assert (tmp_path / "net.nir").exists() and (tmp_path / "net_brian2.py").exists()


def test_gain_study(tmp_path):
    rows = _load("gain_study").main(["romo_rate", "--small", "--out", str(tmp_path)])
    assert [r["gain"] for r in rows] == [0.5, 1.0]
    with open(tmp_path / "gains.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [float(r["lambda_max_before"]) for r in table] == pytest.approx([r["lambda_max_before"] for r in rows])
    # a weaker recurrence contracts faster: g = 0.5 below g = 1.0 before training
    assert rows[0]["lambda_max_before"] < rows[1]["lambda_max_before"] < 0.05
    assert (tmp_path / "lyapunov_vs_gain.png").exists()
