#!/usr/bin/env bash
# Set up neuro's environment in ./.venv (Python 3.11, CPU).
#
# Why two pip steps: lava-nc 0.10.0 declares Requires-Python <3.11 and pins
# numpy<2, so pip refuses it in a normal dependency list.  We install every
# other dependency (pinned to versions that co-install with lava) first, then
# lava-nc alone with --no-deps --ignore-requires-python.  lava's one Python 3.11
# incompatibility (mutable dataclass defaults) is patched when neuro imports it
# (backends/lava.py), so the installed files stay untouched.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch is pinned: this version is a CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
python -m pip install -q torch==2.13.0
python -m pip install -q -e '.[dev,all]'     # every optional simulator (extras: lif, lava, brian2, nir, cluster)
python -m pip install -q --no-deps --ignore-requires-python lava-nc==0.10.0
# NIR clients (tests run them on our graphs).  rockpool 3.1.0 and PyNN 0.13.0 (+ lazyarray, neo,
# quantities) install normally.  norse 1.1.0 lists torchvision, which pulls torch 2.14 with CUDA; norse
# uses it only in its example tasks (norse.task), so it goes in with --no-deps (numpy, torch, nir and
# nirtorch are already here).  sinabs 3.1.3 pins nir<=1.0.4 and needs samna (the Speck/DynapCNN hardware
# driver) only in sinabs.backend.dynapcnn: --no-deps plus pbr, which it reads its version with.
python -m pip install -q rockpool==3.1.0 PyNN==0.13.0
python -m pip install -q --no-deps norse==1.1.0 sinabs==3.1.3
python -m pip install -q pbr==7.1.3
# dsa-metric (Dynamical Similarity Analysis, neuro/dsa.py) in its own line: its dependencies (pydmd, pandas,
# xarray, pot, ...) co-install, but an unpinned install upgrades numpy to 2.x, which lava and brian2 refuse
python -m pip install -q dsa-metric==2.0.2 numpy==1.26.4
python -c "import neuro; print('neuro', neuro.__version__, 'installed in .venv')"
