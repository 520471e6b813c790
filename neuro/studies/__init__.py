"""Paper reproductions: ``neuro reproduce NAME`` runs ``neuro.studies.NAME``.

Each study module defines ``add_arguments(parser)`` and ``run(args) -> int``;
its results land in a run folder (``--out``), with figures and a claims table.
"""
