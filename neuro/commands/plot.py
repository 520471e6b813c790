"""``neuro plot RUN_FOLDER``: redraw the figures of a run folder from its tables.

A ``neuro train`` folder (``history.csv``) gives ``learning_curve.png`` titled with the run's
spec, task, rule, backend and dt (read from ``spec.toml`` and ``args.json``); a study or sweep
folder (``metrics.csv``) gives ``learning_curves.png``; a ``neuro compare`` folder
(``summary.json``) gives ``compare.png``; an initialization study folder (``config.json``, ``runs.csv``,
``curves.parquet``) gets all its figures again.  Each figure's data is also written as CSV.
"""
from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

from neuro import plots


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder with history.csv (neuro train), metrics.csv (studies, sweeps), "
                   "summary.json (neuro compare) or curves.parquet (neuro reproduce initialization)")


def run(args) -> int:
    folder = Path(args.run)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such run folder: {folder}")
    if (folder / "config.json").exists() and any((folder / f"curves.{x}").exists() for x in ("parquet", "csv")):
        from neuro.studies.initialization import redraw
        for path in redraw(folder):
            print(f"wrote {path}")
        return 0
    if (folder / "metrics.csv").exists():
        curves = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
        with open(folder / "metrics.csv") as fh:
            for row in csv.DictReader(fh):
                panel = " / ".join(row[k] for k in ("task", "rule") if k in row)
                curves[panel][f"g = {row.get('gain', '?')}"][row.get("seed", "0")].append(float(row["loss"]))
        if not curves:
            raise ValueError(f"{folder / 'metrics.csv'} has no rows yet: no chunk of the run has finished")
        panels = {p: {g: list(seeds.values()) for g, seeds in lines.items()} for p, lines in curves.items()}
        out = plots.learning_curves(panels, folder / "learning_curves.png")
    elif (folder / "history.csv").exists():
        from neuro.runfolder import read_config, read_history
        config = read_config(folder)
        try:
            history = read_history(folder / "history.csv")
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{folder / 'history.csv'} is not a history table (no loss column, or a "
                             f"non-number: {e})") from None
        if not history.loss:
            raise ValueError(f"{folder / 'history.csv'} has no rows yet: the run has not finished an iteration")
        title = folder.name
        if (folder / "spec.toml").exists():
            import neuro
            from neuro.runfolder import default_backend
            spec = neuro.load_spec(folder / "spec.toml")
            backend = config.get("backend") or default_backend(spec)
            title = (f"{spec.name} ({backend}, dt {spec.dt:g} ms): {config.get('task', '?')} / "
                     f"{config.get('rule', '?')}")
        label = f"g = {config['gain']}" if config.get("gain") is not None else "loss"
        out = plots.learning_curves({title: {label: [history.loss]}}, folder / "learning_curve.png")
    elif (folder / "summary.json").exists():
        from neuro.compare import plot_compare
        r = json.loads((folder / "summary.json").read_text())
        traces = folder / "traces.npz"
        if not traces.exists():
            raise FileNotFoundError(f"{folder} has summary.json but no traces.npz; rerun neuro compare")
        import numpy as np
        with np.load(traces) as t:
            r["traces"] = {k: (float(t[k]) if t[k].ndim == 0 else t[k]) for k in t.files}
        out = folder / "compare.png"
        plot_compare(r, out)
    else:
        raise FileNotFoundError(f"{folder} has neither metrics.csv, history.csv nor summary.json")
    print(f"wrote {out}")
    return 0
