"""The similarity study at the size the shared machine allowed (2 cores, load ~18): the medium
configuration with 3 seeds, N = 48, 32 recorded neurons per stand-in, reaching at dt = 20 ms for 400
iterations and the context task for 800, the Dale/ReLU variants on the context task only, no teacher.

    OMP_NUM_THREADS=1 nice -n 5 python results/similarity/run_shared.py TASK results/similarity/TASK

The study runs DSA on the final networks itself (claim 7); results/similarity/context was made before it
did, and got its DSA from ``python -m neuro.studies.similarity_dsa results/similarity/context``.
"""
import sys
from pathlib import Path

from neuro.standins import StandInConfig
from neuro.studies import similarity as study


def config(task: str) -> study.Config:
    cfg = study.Config.medium()
    cfg.tasks = [task]
    cfg.seeds = 3
    cfg.n_hidden = {"reaching": 48, "context": 48}
    cfg.reaching_dt = 20.0
    cfg.iterations = {"reaching": 400, "context": 800}
    cfg.dale_tasks = ["context"]
    cfg.teacher_rule = None
    cfg.snapshots, cfg.linear_snapshots = 8, 6
    cfg.standin = StandInConfig(n_neurons=32, force_units=150, force_segments={"reaching": 300, "context": 400})
    return cfg


if __name__ == "__main__":
    task, out = sys.argv[1], Path(sys.argv[2])
    study.study(config(task), out, progress=False)
    print(f"results in {out}")
