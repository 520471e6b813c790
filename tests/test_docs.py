"""The documentation says what the code does: docs/outputs.md's columns are the files' columns."""
import csv
import re
from pathlib import Path

import pytest

import neuro

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = (ROOT / "docs" / "outputs.md").read_text()


def _study_rows():
    section = OUTPUTS.split("## `neuro reproduce STUDY`")[1]
    for line in section.splitlines():
        m = re.match(r"\| (\w+) \| `([\w./]+)` \| (.+) \|$", line)
        if m:
            yield m.group(1), m.group(2), re.findall(r"`(\w+)`", m.group(3))


@pytest.mark.parametrize("study, name, columns", list(_study_rows()))
def test_outputs_md_lists_the_columns_of_each_committed_study_table(study, name, columns):
    files = [p for p in (ROOT / "results" / study / name, ROOT / "docs" / study / name) if p.exists()]
    assert files, f"docs/outputs.md lists {study}/{name}, which is not committed under results/ or docs/"
    with open(files[0], newline="") as fh:
        assert next(csv.reader(fh)) == columns


def test_outputs_md_lists_the_history_columns(tmp_path):
    h = neuro.History()
    h.append(0, 1.0, 0.5)
    h.to_csv(tmp_path / "history.csv")
    header = (tmp_path / "history.csv").read_text().splitlines()[0].split(",")
    section = OUTPUTS.split("`history.csv` columns:")[1].split("##")[0]
    assert re.findall(r"^\| `(\w+)` \|", section, re.M) == header
