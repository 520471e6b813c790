"""Build the API reference (HTML) from the docstrings with pdoc: ``python scripts/api_docs.py [OUT]``.

Writes ``OUT`` (default ``docs/api/``, not committed): one page per public module of ``neuro``,
its backends, tasks and rules.  ``.ci/run`` builds it on every CI run; a module that fails to
import, or a broken docstring reference, fails the build.
"""
from __future__ import annotations

import sys
from pathlib import Path

MODULES = ["neuro", "neuro.spec", "neuro.weights", "neuro.compiler", "neuro.training", "neuro.ensemble",
           "neuro.lyapunov", "neuro.flossing", "neuro.similarity", "neuro.transfer", "neuro.compare",
           "neuro.runfolder", "neuro.artefacts", "neuro.catalog", "neuro.plots", "neuro.progress", "neuro.sweep",
           "neuro.rules", "neuro.tasks", "neuro.models", "neuro.backends.rate", "neuro.backends.lif",
           "neuro.backends.nir", "neuro.backends.brian2", "neuro.lif_params", "neuro.trajectory"]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "docs" / "api"
    try:
        import pdoc
    except ImportError:
        print("the API reference needs pdoc: .venv/bin/pip install pdoc", file=sys.stderr)
        return 2
    pdoc.render.configure(docformat="markdown", show_source=False)
    pdoc.pdoc(*MODULES, output_directory=out)
    pages = sorted(out.rglob("*.html"))
    print(f"API reference: {len(pages)} pages in {out}")
    return 0 if len(pages) >= len(MODULES) else 1


if __name__ == "__main__":
    sys.exit(main())
