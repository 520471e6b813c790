"""``neuro plot RUN_FOLDER``: redraw the learning curves of a run folder from its tables."""
from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from neuro import plots


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder with history.csv (neuro train) or metrics.csv (studies, sweeps)")


def run(args) -> int:
    folder = Path(args.run)
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
        try:
            with open(folder / "history.csv") as fh:
                loss = [float(r["loss"]) for r in csv.DictReader(fh)]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{folder / 'history.csv'} is not a history table (no loss column, or a "
                             f"non-number: {e})") from None
        if not loss:
            raise ValueError(f"{folder / 'history.csv'} has no rows yet: the run has not finished an iteration")
        out = plots.learning_curves({folder.name: {"loss": [loss]}}, folder / "learning_curve.png")
    else:
        raise FileNotFoundError(f"{folder} has neither metrics.csv nor history.csv")
    print(f"wrote {out}")
    return 0
