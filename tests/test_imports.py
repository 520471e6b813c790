"""The layout rule of the design: each third-party library is imported in one module of the package
(numpy, torch and scipy, the numerical foundation, excepted), so that a missing optional library
fails in one place with one message."""
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOUNDATION = {"numpy", "torch", "scipy"}


def third_party_imports() -> dict:
    found = defaultdict(set)
    for folder in ("neuro", "backends", "tasks", "models"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ("neuro", "__future__"):
                        found[top].add(str(path.relative_to(ROOT)))
    return found


def test_each_third_party_library_is_imported_in_one_module():
    found = third_party_imports()
    assert {"snntorch", "lava", "neurogym", "matplotlib", "tqdm", "pyarrow"} <= set(found)   # the scan sees them
    assert found["snntorch"] == {"backends/lif.py"} and found["neurogym"] == {"tasks/neurogym_tasks.py"}
    spread = {lib: sorted(mods) for lib, mods in found.items() if len(mods) > 1 and lib not in FOUNDATION}
    assert spread == {}
