"""The rule × backend matrix, from the registries: which pairs run and why the others are refused.

``python -m neuro.rules.matrix`` prints the Markdown table; ``--write README.md`` replaces the
table between the ``rule-backend-matrix`` markers of that file.
"""
from __future__ import annotations

import sys
from pathlib import Path

from neuro.compiler import BACKENDS, backend_class
from neuro.contract import refusal as _refusal

from . import REGISTRY, get

BEGIN, END = "<!-- rule-backend-matrix: begin -->", "<!-- rule-backend-matrix: end -->"


def needs(rule, backend) -> tuple:
    """What ``rule`` (an instance) needs of ``backend`` (an instance or a class)."""
    return tuple(rule.needs_for(backend) if hasattr(rule, "needs_for") else getattr(rule, "needs", ()))


def refusal(rule_name: str, backend_name: str) -> str | None:
    """The one-line refusal of a registered rule (default options) on a registered backend, or None."""
    rule, cls = get(rule_name), backend_class(backend_name)
    return _refusal(f"rule {rule_name!r}", needs(rule, cls), cls)


def matrix() -> dict:
    """``{(rule, backend): None (runs) | refusal line}`` over every registered rule and backend."""
    return {(r, b): refusal(r, b) for r in sorted(REGISTRY) for b in BACKENDS}


def table() -> str:
    """The matrix as a Markdown table: ✔ or "refused: needs <what the backend lacks>"."""
    backends = list(BACKENDS)
    lines = ["| rule | " + " | ".join(backends) + " |", "|---" * (len(backends) + 1) + "|"]
    m = matrix()
    for r in sorted(REGISTRY):
        cells = []
        for b in backends:
            why = m[r, b]
            cells.append("✔" if why is None else "refused: needs " + why.split(" needs ", 1)[1].split(";")[0])
        lines.append(f"| `{r}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(path) -> None:
    """Replace the table between the markers of ``path`` (a README)."""
    path = Path(path)
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{path} has no {BEGIN} … {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        write(sys.argv[2])
    else:
        print(table())
