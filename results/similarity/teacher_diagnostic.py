"""Diagnostic for `neuro reproduce similarity --scale medium`: does the rule gap come from the teacher?

The "data" of the study are a teacher network trained with BPTT.  This reruns the medium scale's
BPTT and e-prop students (N = 64, 4 seeds, default gain and learning rate, same iterations) against a
teacher trained with e-prop instead, so a gap that follows the teacher's rule shows up as a reversal.

    OMP_NUM_THREADS=1 .venv/bin/python results/similarity/teacher_diagnostic.py eprop 2000 runs/similarity-eprop-teacher reaching
    OMP_NUM_THREADS=1 .venv/bin/python results/similarity/teacher_diagnostic.py eprop 2500 runs/similarity-eprop-teacher-context context

Arguments: teacher rule, teacher iterations, output folder, task.  About 2.3 and 1.2 CPU-minutes.
"""
import sys
from pathlib import Path

from neuro.studies import similarity as S

cfg = S.Config.medium()
cfg.tasks = [sys.argv[4]]
cfg.rules, cfg.dale_rules, cfg.dale_tasks = ["bptt", "eprop"], [], []
cfg.gains, cfg.lrs, cfg.teacher_rule = [1.0], [1e-3], sys.argv[1]
cfg.teacher_iterations = {sys.argv[4]: int(sys.argv[2])}
S.study(cfg, Path(sys.argv[3]), progress=False)
