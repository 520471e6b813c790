"""Regenerate the README's results tables from the committed results files.

Each generated table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` in
README.md or a page of ``docs/``; this script rewrites what lies between from the table's results file.

    python scripts/readme_tables.py           # rewrite the tables of README.md and docs/*.md
    python scripts/readme_tables.py --check   # exit 1 (naming page and table) if one is stale

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

from neuro.compare import default_lif_lr

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


def compare_command(r: dict) -> str:
    """The ``neuro compare`` command that wrote a ``summary.json``."""
    cmd = (f"neuro compare {r['spec']} --task {r['task']} --rule {r['rule']} --iterations {r['iterations']} "
           f"--lr {r['lr']:g} --seed {r['seed']}")
    if r.get("batch_size", 32) != 32:
        cmd += f" --batch-size {r['batch_size']}"
    if r.get("substeps", 1) > 1 and r.get("lif_dt_ms") != 5.0:       # a rate spec's default LIF step
        cmd += f" --lif-dt {r['lif_dt_ms']:g}"
    lif_lr = r.get("lif_lr", r["lr"])                 # summaries before lif_lr trained both at lr
    if lif_lr != default_lif_lr(r["lr"], r.get("substeps", 1)):
        cmd += f" --lif-lr {lif_lr:g}"
    return cmd


def compare_results() -> str:
    """One block per committed ``results/compare/*/summary.json``: its command, then both variants."""
    folder = ROOT / "results" / "compare"
    summaries = sorted(folder.glob("*/summary.json")) if folder.exists() else []
    if not summaries:
        raise FileNotFoundError("no results/compare/*/summary.json")
    lines = ["| command | variant | test accuracy | final loss | LIF firing | Procrustes distance |",
             "|---|---|---|---|---|---|"]
    for path in summaries:
        r = json.loads(path.read_text())
        f = r["lif"]["firing"]
        pd = r["procrustes_distance"]
        cmd = f"`{compare_command(r)}` (`results/compare/{path.parent.name}`)"
        for k in ("rate", "lif"):
            v = r[k]
            dt = r["dt_ms"] if k == "rate" else r["lif_dt_ms"]
            loss = "n/a" if v["final_loss"] is None else f"{v['final_loss']:.4f}"
            if v.get("diverged"):
                loss += f" (diverged after {len(v['history']['loss'])} iterations)"
            firing = "" if k == "rate" else (f"{f['mean_rate_hz']:.1f} Hz mean, {f['fraction_silent']:.0%} silent; "
                                             f"ceiling {f['ceiling_hz']:.0f} Hz, {f['fraction_near_ceiling']:.0%} "
                                             f"above half of it")
            lines.append(f"| {cmd if k == 'rate' else ''} | {k} (dt {dt:g} ms) | {v['accuracy']:.3f} | {loss} | "
                         f"{firing} | {'' if k == 'rate' else ('n/a' if pd is None else f'{pd:.3f} rad')} |")
    return "\n".join(lines)


def onchip(table: str) -> str:
    """``neuro reproduce onchip``'s per-run and claims tables (``neuro.studies.onchip.readme_tables``)."""
    from neuro.studies.onchip import readme_tables
    return readme_tables(results_file("onchip", "summary.csv").parent)[table]


def reward_seeds() -> str:
    """Each reward condition's seeds: % correct in the first → last 500 trials (``seeds.csv``)."""
    rows = list(csv.DictReader(open(results_file("reward", "seeds.csv"), newline="")))
    runs = defaultdict(dict)
    for r in rows:
        label = f"{r['task']} / {r['rule']}" + (f" ({r['backend']})" if r["backend"] != "rate" else "")
        runs[(label, r["trials"])][int(r["seed"])] = \
            f"{100 * float(r['first_correct']):.0f} → {100 * float(r['last_correct']):.0f}"
    n = max(max(s) for s in runs.values()) + 1
    lines = ["| condition | trials | " + " | ".join(f"seed {s}" for s in range(n)) + " |", "|---" * (n + 2) + "|"]
    for (label, trials), seeds in runs.items():
        lines.append(f"| {label} | {trials} | " + " | ".join(seeds.get(s, "") for s in range(n)) + " |")
    return "\n".join(lines)


def reward_summary() -> str:
    """Each reward condition: % correct in the last 500 trials (mean ± std over seeds, and each seed's)
    and trials to 80 % correct (``summary.csv``, ``seeds.csv``)."""
    seeds = defaultdict(list)
    for r in csv.DictReader(open(results_file("reward", "seeds.csv"), newline="")):
        seeds[(r["task"], r["rule"], r["backend"])].append(f"{100 * float(r['last_correct']):.0f}")
    lines = ["| task | rule | backend | seeds × trials | % correct, last 500 trials (each seed) | "
             "trials to 80 % (running 200; seeds that got there) |", "|---|---|---|---|---|---|"]
    for r in csv.DictReader(open(results_file("reward", "summary.csv"), newline="")):
        key = (r["task"], r["rule"], r["backend"])
        correct = f"{100 * float(r['final_correct_mean']):.1f} ± {100 * float(r['final_correct_std']):.1f}"
        to80 = (f"{float(r['trials_to_80_mean']):.0f} ± {float(r['trials_to_80_std']):.0f}"
                if r["trials_to_80_mean"] not in ("", "nan") else "never")
        lines.append(f"| {r['task']} | {r['rule']} | {r['backend']} | {r['seeds']} × {r['trials']} | {correct} "
                     f"({', '.join(seeds[key])}) | {to80} ({r['reached_80']}) |")
    return "\n".join(lines)


TABLES = {"quantization-accuracy": quantization_accuracy, "compare": compare_results, "reward-seeds": reward_seeds,
          "reward-summary": reward_summary,
          "onchip-runs": lambda: onchip("runs"), "onchip-claims": lambda: onchip("claims")}


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


def pages() -> list[Path]:
    """README.md and the documentation pages (``docs/*.md``, ``docs/*/README.md``): wherever a generated
    table sits."""
    return [README] + sorted((ROOT / "docs").glob("*.md")) + sorted((ROOT / "docs").glob("*/README.md"))


def _label(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else page.name


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 if a page is stale")
    a = p.parse_args(argv)
    stale, done = [], []
    for page in pages():
        text = page.read_text()
        names = [n for n, _ in blocks(text)]
        if not names:
            continue
        new = render(text)
        if a.check:
            stale += [f"{_label(page)}: {n}" for (n, old), (_, fresh) in zip(blocks(text), blocks(new))
                      if old.strip() != fresh.strip()]
        elif new != text:
            page.write_text(new)
        done += [f"{_label(page)}: {n}" for n in names]
    if stale:
        print(f"stale tables: {', '.join(stale)}; run python scripts/readme_tables.py", file=sys.stderr)
        return 1
    print(f"tables {'up to date' if a.check else 'regenerated'}: {', '.join(done)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
