"""Regenerate the README's results tables from the committed results files.

Each generated table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` in
README.md; this script rewrites what lies between from the table's results file.

    python scripts/readme_tables.py           # rewrite README.md
    python scripts/readme_tables.py --check   # exit 1 (naming the table) if README.md is stale

``tests/test_readme_tables.py`` runs the check.  A study that moves its outputs from
``docs/STUDY/`` to ``results/STUDY/`` is found in either place.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def results_file(study: str, name: str) -> Path:
    for folder in ("results", "docs"):
        path = ROOT / folder / study / name
        if path.exists():
            return path
    raise FileNotFoundError(f"no results/{study}/{name} (nor docs/{study}/{name})")


def _num(x: float) -> str:
    return "0" if x == 0 else f"{x:.3f}"


def quantization_accuracy() -> str:
    """Mean held-out accuracy (float / Loihi fixed point) per weight bit width and gain."""
    rows = list(csv.DictReader(open(results_file("quantization", "metrics.csv"), newline="")))
    acc = defaultdict(list)
    for r in rows:
        acc[(int(r["bits"]), float(r["gain"]), r["precision"])].append(float(r["accuracy"]))
    gains = sorted({g for _, g, _ in acc})
    bits = sorted({b for b, _, _ in acc}, reverse=True)
    mean = lambda v: sum(v) / len(v)
    lines = ["| bits | " + " | ".join(f"g = {g:.1f}" for g in gains) + " |",
             "|---" * (len(gains) + 1) + "|"]
    for b in bits:
        label = "float64" if b == 32 else str(b)
        cells = [f"{_num(mean(acc[(b, g, 'float')]))} / {_num(mean(acc[(b, g, 'fixed')]))}" for g in gains]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_2af_lif() -> str:
    """The numbers of ``neuro compare 2af_lif --task 2af --rule eprop --iterations 300 --seed 0``."""
    r = json.loads(results_file("compare", "2af_lif-2af-eprop/summary.json").read_text())
    f = r["lif"]["firing"]
    cv = "n/a" if f["cv_isi"] is None else f"{f['cv_isi']:.2f}"
    pd = r["procrustes_distance"]
    return (f"| variant | test accuracy | LIF firing | Procrustes distance |\n"
            f"|---|---|---|---|\n"
            f"| rate (dt {r['dt_ms']:g} ms) | {r['rate']['accuracy']:.3f} | | |\n"
            f"| LIF (dt {r['lif_dt_ms']:g} ms) | {r['lif']['accuracy']:.3f} | {f['mean_rate_hz']:.1f} Hz mean, "
            f"{f['fraction_silent']:.0%} silent, CV {cv}; ceiling {f['ceiling_hz']:.0f} Hz, "
            f"{f['fraction_near_ceiling']:.0%} above half of it | "
            f"{'n/a' if pd is None else f'{pd:.3f} rad'} |")


TABLES = {"quantization-accuracy": quantization_accuracy, "compare-2af_lif": compare_2af_lif}


def blocks(text: str) -> list[tuple[str, str]]:
    """(name, current content) of every generated block in ``text``."""
    return [(m.group(1), m.group(2)) for m in
            re.finditer(r"<!-- table:([\w-]+) -->\n(.*?)\n?<!-- /table:\1 -->", text, re.S)]


def render(text: str) -> str:
    def fill(m):
        name = m.group(1)
        if name not in TABLES:
            raise KeyError(f"README.md has a generated table {name!r} that scripts/readme_tables.py does not know")
        return f"<!-- table:{name} -->\n{TABLES[name]()}\n<!-- /table:{name} -->"
    return re.sub(r"<!-- table:([\w-]+) -->\n.*?\n?<!-- /table:\1 -->", fill, text, flags=re.S)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 if README.md is stale")
    a = p.parse_args(argv)
    text = README.read_text()
    new = render(text)
    if a.check:
        stale = [n for (n, old), (_, fresh) in zip(blocks(text), blocks(new)) if old.strip() != fresh.strip()]
        if stale:
            print(f"README.md is stale in: {', '.join(stale)}; run python scripts/readme_tables.py", file=sys.stderr)
            return 1
        print(f"README.md tables up to date: {', '.join(n for n, _ in blocks(text))}")
        return 0
    README.write_text(new)
    print(f"README.md: regenerated {', '.join(n for n, _ in blocks(new))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
