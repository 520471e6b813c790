"""``neuro compare`` leaves both variants as run folders that the other commands read."""
import json

import numpy as np
import pytest
import torch

import neuro
from neuro.cli import main
from neuro.spec import PopulationSpec


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    spec = neuro.NetworkSpec(name="tiny", dt=20.0, n_inputs=3, n_outputs=3, populations=[PopulationSpec(size=8)])
    neuro.save_spec(spec, tmp / "tiny.toml")
    out = tmp / "out"
    assert main(["compare", str(tmp / "tiny.toml"), "--task", "2af", "--rule", "bptt", "--iterations", "2",
                 "--batch-size", "4", "--lif-dt", "10", "--out", str(out), "--no-progress"]) == 0
    return out


def test_both_variants_are_run_folders_with_their_trained_weights(compared):
    summary = json.loads((compared / "summary.json").read_text())
    task = neuro.tasks.get("2af", dt=summary["dt_ms"])
    test = task.batch(summary["test_trials"], seed=(summary["seed"], 999_983))
    assert summary["lif_dt_ms"] == 10.0 and summary["substeps"] == 2
    for kind in ("rate", "lif"):
        run = neuro.load_run(compared / kind)
        assert run.backend == kind and run.task_name == "2af" and run.spec.neuron.model == kind
        assert run.spec.dt == {"rate": 20.0, "lif": 10.0}[kind] and len(run.history) == 2
        k = summary["substeps"] if kind == "lif" else 1
        with torch.no_grad():   # the saved weights give the accuracy the comparison reported
            out = run.net.run(test.inputs.repeat_interleave(k, 0)).outputs[k - 1::k]
        assert float(task.accuracy(out, test)) == pytest.approx(summary[kind]["accuracy"])
        assert run.task.dt == run.spec.dt          # the LIF run's task: the 2AF grid held over 2 substeps


def test_the_lif_variant_of_a_comparison_exports(compared, tmp_path, capsys):
    assert main(["export", str(compared / "lif"), "--format", "nir", "--out", str(tmp_path / "v.nir")]) == 0
    spec, w = neuro.load_nir(tmp_path / "v.nir")
    np.testing.assert_allclose(w.W_rec, neuro.load_run(compared / "lif").net.weights().W_rec, rtol=1e-6)
    assert main(["plot", str(compared)]) == 0
    assert (compared / "compare.png").exists()
