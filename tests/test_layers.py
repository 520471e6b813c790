"""One-way layering, read from the source (ast): core ← backends ← rules/analyses ← studies ← CLI.

Every import anywhere in a module (top level or inside a function) counts.  A module may import
its own layer or a lower one, never a higher one, and never another backend's private names.
"""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
FOLDERS = {"neuro": "neuro", "backends": "neuro.backends", "tasks": "neuro.tasks", "models": "neuro.models"}
CORE, BACKENDS, RULES, STUDIES, CLI = range(5)
NAMES = ["core", "backends", "rules/analyses", "studies/sweeps", "CLI"]
# modules named here; the rest by folder (backends/, rules/, studies/, commands/, tasks/), and any
# other module of neuro/ sits with the rules and analyses
LAYER = {
    "neuro.spec": CORE, "neuro.weights": CORE, "neuro.connectivity": CORE, "neuro.trajectory": CORE,
    "neuro.surrogates": CORE, "neuro.readout": CORE, "neuro.activations": CORE, "neuro.lif_params": CORE,
    "neuro.contract": CORE, "neuro.checks": CORE, "neuro.io": CORE, "neuro.models": CORE, "neuro.progress": CORE,
    "neuro.compiler": BACKENDS,
    "neuro": STUDIES,                 # the package's facade (`import neuro`) gathers rules and training
    "neuro.studies": STUDIES, "neuro.sweep": STUDIES, "neuro.compare": STUDIES, "neuro.runs": STUDIES,
    "neuro.executors": STUDIES, "neuro.plots": STUDIES, "neuro.runfolder": STUDIES, "neuro.catalog": STUDIES,
    "neuro.cli": CLI,
}
PREFIXES = [("neuro.backends.", BACKENDS), ("neuro.rules.", RULES), ("neuro.studies.", STUDIES),
            ("neuro.commands", CLI), ("neuro.tasks", CORE)]


def modules() -> dict:
    out = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            out[".".join([package] + parts)] = path
    return out


def layer(name: str) -> int:
    if name in LAYER:
        return LAYER[name]
    for prefix, level in PREFIXES:
        if name.startswith(prefix):
            return level
    if name == "neuro.rules":
        return RULES
    return RULES


def imports(name: str, path: pathlib.Path, known: dict):
    """(imported module, imported name or None, line) for every import of neuro inside ``path``."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "neuro":
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "neuro":
                continue
            for alias in node.names:
                full = f"{module}.{alias.name}"
                yield (full, None, node.lineno) if full in known else (module, alias.name, node.lineno)


def check(name: str, path: pathlib.Path, known: dict) -> list[str]:
    bad, mine = [], layer(name)
    for target, attr, line in imports(name, path, known):
        where = f"{path.name}:{line}"
        if layer(target) > mine:
            bad.append(f"{where}: {name} ({NAMES[mine]}) imports {target} ({NAMES[layer(target)]})")
        if target.startswith("neuro.backends.") and attr and attr.startswith("_") and not name.startswith(target):
            bad.append(f"{where}: {name} imports the private name {attr} of {target}")
    return bad


def violations() -> list[str]:
    known = modules()
    return [line for name, path in sorted(known.items()) if name != "neuro" for line in check(name, path, known)]


def test_no_module_imports_a_higher_layer_or_another_backends_private_names():
    assert violations() == []


def test_the_checker_sees_a_violation(tmp_path):
    known = modules()
    fake = tmp_path / "fake.py"
    fake.write_text("import torch\n\ndef f():\n    from neuro.commands.common import task_for\n"
                    "    from ..backends.rate import _Rollout\n    from .base import GradientRule\n")
    assert check("neuro.rules.fake", fake, known) == [
        "fake.py:4: neuro.rules.fake (rules/analyses) imports neuro.commands.common (CLI)",
        "fake.py:5: neuro.rules.fake imports the private name _Rollout of neuro.backends.rate"]
    assert layer("neuro.commands.common") > layer("neuro.compare") > layer("neuro.rules.eprop") \
        > layer("neuro.backends.lif") > layer("neuro.readout")
