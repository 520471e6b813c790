"""The README's generated tables match the committed results files (scripts/readme_tables.py)."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tables)
README = (ROOT / "README.md").read_text()
BLOCKS = [(page.name, name, current) for page in tables.pages() for name, current in tables.blocks(page.read_text())]


def test_the_pages_have_generated_tables():
    assert {name for _, name, _ in BLOCKS} >= {"quantization-accuracy", "compare", "reward-seeds", "reward-summary"}


@pytest.mark.parametrize("page, name, current", BLOCKS)
def test_each_generated_table_matches_its_results_file(page, name, current):
    assert current.strip() == tables.TABLES[name]().strip(), \
        f"{page}'s table {name!r} is stale: run python scripts/readme_tables.py"


def test_the_compare_table_is_read_from_the_summaries():
    # an independent reading: every committed comparison's command and both accuracies
    import json
    text = tables.compare_results()
    for path in sorted((ROOT / "results" / "compare").glob("*/summary.json")):
        r = json.loads(path.read_text())
        assert f"`neuro compare {r['spec']} --task {r['task']} --rule {r['rule']} " in text
        for k in ("rate", "lif"):
            assert f"| {k} (dt " in text and f"| {r[k]['accuracy']:.3f} |" in text


def test_the_quantization_table_is_read_from_the_metrics(tmp_path, monkeypatch):
    # an independent reading of one cell: 8 bits, g = 2.0, float / fixed over the seeds
    import csv
    rows = list(csv.DictReader(open(tables.results_file("quantization", "metrics.csv"))))
    cell = [sum(float(r["accuracy"]) for r in rows if r["bits"] == "8" and float(r["gain"]) == 2.0
                and r["precision"] == p) / 3 for p in ("float", "fixed")]
    line = next(l for l in tables.quantization_accuracy().splitlines() if l.startswith("| 8 |"))
    assert line.split(" | ")[-1].rstrip(" |") == f"{cell[0]:.3f} / {cell[1]:.3f}"


def test_check_names_a_stale_table(tmp_path, monkeypatch, capsys):
    copies = []
    for page in tables.pages():                      # the pages as committed, one made stale
        copy = tmp_path / page.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        text = page.read_text()
        if "<!-- table:quantization-accuracy -->" in text:
            text, stale = text.replace("| 8 | ", "| 8 | 9.999 / ", 1), page.name
        copy.write_text(text)
        copies.append(copy)
    monkeypatch.setattr(tables, "pages", lambda: copies)
    assert tables.main(["--check"]) == 1
    assert f"{stale}: quantization-accuracy" in capsys.readouterr().err
    assert tables.main([]) == 0 and tables.main(["--check"]) == 0


def test_the_reward_tables_agree_with_each_other():
    # summary.csv's mean (the study's own histories) against seeds.csv's seeds (recounted from trials.csv)
    import csv
    seeds = {}
    for r in csv.DictReader(open(tables.results_file("reward", "seeds.csv"))):
        seeds.setdefault((r["task"], r["rule"], r["backend"]), []).append(float(r["last_correct"]))
    summary = list(csv.DictReader(open(tables.results_file("reward", "summary.csv"))))
    assert len(summary) == len(seeds) >= 5
    for r in summary:
        last = seeds[(r["task"], r["rule"], r["backend"])]
        assert len(last) == int(r["seeds"])
        assert float(r["final_correct_mean"]) == pytest.approx(sum(last) / len(last), abs=1e-9)
    text = tables.reward_summary()
    assert "| 2af | reinforce | rate | 5 × 15000 | " in text


def test_the_reward_docs_collapse_numbers_are_the_seeds_files():
    import csv
    solved = [int(r["trials_to_99"]) for r in csv.DictReader(open(tables.results_file("reward", "seeds.csv")))
              if (r["task"], r["rule"], r["backend"]) == ("2af", "reinforce", "rate")]
    span = f"{min(solved)}–{max(solved)}"
    for page in ("docs/studies.md", "docs/reward/README.md"):
        assert f"by trial {span}" in " ".join((ROOT / page).read_text().split()), page
