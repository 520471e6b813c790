"""The LIF variant of `neuro compare romo_rate --task romo` trained alone over learning rates, rules and LIF
steps (the same initial weights, batches, seed and test trials as `neuro compare`), to find where it learns.

    OMP_NUM_THREADS=1 python results/compare/romo_lif_scan.py SPEC TASK RULE ITERATIONS LR[,LR...] [lif|rate] [LIF_DT]

prints one JSON line per learning rate: loss (first, minimum, mean of the last 10, means of 20-iteration
windows in `hist`), held-out accuracy on 64 test trials and the LIF network's mean rate (Hz).
`romo_lif_scan.jsonl` holds the lines measured on the shared two-core machine, each with its arguments.
"""
import sys, time, json
import numpy as np, torch
import neuro
from neuro import compare as C
spec_name, task_name, rule, its = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lrs = [float(x) for x in sys.argv[5].split(",")]
which = sys.argv[6] if len(sys.argv) > 6 else "lif"
spec = neuro.models.load(spec_name)
lif_dt = float(sys.argv[7]) if len(sys.argv) > 7 else 1.0
base, rate_spec, lif_spec, task, rn = C._resolve(spec, task_name, rule, lif_dt)
w = neuro.init_weights(base, 0)
k = int(round(task.dt / lif_spec.dt)) if lif_spec.dt != task.dt else 1
for lr in lrs:
    if which == "lif":
        t = C.HeldTask(task, k) if k > 1 else task
        net = neuro.compile(lif_spec, "lif", C.lif_weights(base, rate_spec, lif_spec, w))
    else:
        t = task; net = neuro.compile(rate_spec, "rate", w.copy())
    t0 = time.time()
    try:
        h = neuro.train(net, t, neuro.rules.resolve(rule), iterations=its, lr=lr, batch_size=32, seed=0, progress=False)
        err = None
    except Exception as e:
        h = None; err = str(e)[:100]
    test = t.batch(64, seed=(0, 999_983))
    with torch.no_grad():
        tr = net.run(test.inputs)
    acc = t.accuracy(tr.outputs, test)
    L = h.loss if h else []
    print(json.dumps({"which": which, "lif_dt": lif_dt, "hist": [round(float(np.mean(L[i:i+20])),4) for i in range(0, len(L), 20)], "lr": lr, "its": its, "sec": round(time.time()-t0,1), "err": err,
          "loss_first": L[0] if L else None, "loss_min": min(L) if L else None, "loss_last10": float(np.mean(L[-10:])) if L else None,
          "acc": acc, "rate_hz": float(tr.spikes.float().mean()*1000/net.spec.dt) if tr.spikes is not None else None}), flush=True)
