#!/usr/bin/env bash
# Create the benchmark-only environment benchmarks/.venv-peers with the peer
# force fields that benchmarks/run.py compares geoff against.
#
#   bash benchmarks/peers/setup.sh          # from the repository root
#
# These packages are NEVER dependencies of geoff: they live in their own venv and
# run in subprocesses (benchmarks/peers/runner.py). Each peer is installed on its
# own so that one failing install does not stop the others; the outcome of each
# is written to benchmarks/peers/install-status.txt (ok / failed + pip's last line).
# torch is pinned to 2.9.1 (the version geoff's stack uses) through a constraints
# file, so no peer can silently up- or downgrade it.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${PEERS_VENV:-$ROOT/benchmarks/.venv-peers}"
PYTHON="${PYTHON:-python3.11}"
STATUS="$HERE/install-status.txt"
LOGDIR="$VENV/install-logs"

TORCH_VERSION="${TORCH_VERSION:-2.9.1}"
# name=pip requirement (versions the issue's reference figures were measured with)
PEERS=(
  "mace=mace-torch==0.3.16"
  "nequip=nequip==0.19.1"
  "torchmd-net=torchmd-net==3.1.0"
  "egnn-pytorch=egnn-pytorch==0.2.8"
  "se3-transformer-pytorch=se3-transformer-pytorch==0.9.0"
)

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV" || { echo "cannot create $VENV with $PYTHON"; exit 1; }
mkdir -p "$LOGDIR"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade pip wheel setuptools
CONSTRAINTS="$VENV/constraints.txt"
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"
$PIP install --quiet "torch==$TORCH_VERSION" numpy ase psutil || { echo "torch $TORCH_VERSION failed to install"; exit 1; }

: > "$STATUS.tmp"
echo "# benchmarks/peers/setup.sh on $(date -u +%Y-%m-%dT%H:%MZ), python $($VENV/bin/python -V 2>&1 | cut -d' ' -f2), torch $TORCH_VERSION" >> "$STATUS.tmp"
for entry in "${PEERS[@]}"; do
  name="${entry%%=*}"; req="${entry#*=}"
  echo "== installing $name ($req)"
  if $PIP install -c "$CONSTRAINTS" "$req" > "$LOGDIR/$name.log" 2>&1; then
    echo "$name	ok	$req" >> "$STATUS.tmp"
  else
    why="$(grep -E 'ERROR|error:' "$LOGDIR/$name.log" | tail -n 2 | tr '\n\t' '  ' | cut -c1-300)"
    echo "$name	failed	$req	$why" >> "$STATUS.tmp"
  fi
done
# mace-torch pins e3nn==0.4.4 while nequip needs e3nn>=0.5 (0.6.0 is installed
# last). MACE gets its own copy of e3nn 0.4.4 in a side folder that the MACE
# runner puts first on sys.path (benchmarks/peers/runner.py), so both peers run
# with the e3nn they were released against.
if $PIP install --quiet --no-deps --target "$VENV/mace-e3nn" "e3nn==0.4.4" > "$LOGDIR/mace-e3nn.log" 2>&1; then
  echo "mace-e3nn	ok	e3nn==0.4.4 in $VENV/mace-e3nn (for MACE only)" >> "$STATUS.tmp"
else
  echo "mace-e3nn	failed	e3nn==0.4.4 (MACE then runs with e3nn 0.6.0)" >> "$STATUS.tmp"
fi
# OpenMM, openmm-torch and openmm-ml (the versions of geoff's .venv) for
# benchmarks/openmm_ns_per_day.py, which runs MACE through MLPotential("mace").
# In this venv torch must be imported before openmm/openmmtorch, or the Torch
# plugin fails to load (libnvrtc.so.12 is found through torch's libraries).
if $PIP install -c "$CONSTRAINTS" "openmm==8.6.1" "openmmtorch==1.5" "openmmml==1.8" > "$LOGDIR/openmm.log" 2>&1; then
  echo "openmm	ok	openmm==8.6.1 openmmtorch==1.5 openmmml==1.8" >> "$STATUS.tmp"
else
  echo "openmm	failed	openmm==8.6.1 openmmtorch==1.5 openmmml==1.8	$(grep -E 'ERROR|error:' "$LOGDIR/openmm.log" | tail -n 2 | tr '\n\t' '  ' | cut -c1-300)" >> "$STATUS.tmp"
fi
if out="$($VENV/bin/python -c "import torch, openmm, openmmtorch, openmmml; assert openmm.Platform.getNumPlatforms() > 1" 2>&1)"; then
  echo "openmm (torch first)	imports" >> "$STATUS.tmp"
else
  echo "openmm (torch first)	import-failed	$(echo "$out" | tail -n 1 | cut -c1-300)" >> "$STATUS.tmp"
fi
# One import check per peer after all installs: a later install may have
# replaced a dependency that an earlier one pinned (e.g. e3nn).
if PYTHONPATH="$VENV/mace-e3nn" $VENV/bin/python -c "import e3nn, mace; assert e3nn.__version__ == '0.4.4'" 2>/dev/null; then
  echo "mace (with e3nn 0.4.4)	imports" >> "$STATUS.tmp"
fi
for mod in mace:mace nequip:nequip torchmd-net:torchmdnet egnn-pytorch:egnn_pytorch se3-transformer-pytorch:se3_transformer_pytorch; do
  name="${mod%%:*}"; m="${mod#*:}"
  if out="$($VENV/bin/python -c "import $m" 2>&1)"; then
    echo "$name	imports" >> "$STATUS.tmp"
  else
    echo "$name	import-failed	$(echo "$out" | tail -n 1 | cut -c1-300)" >> "$STATUS.tmp"
  fi
done
$VENV/bin/python -m pip freeze > "$VENV/freeze.txt" 2>/dev/null
mv "$STATUS.tmp" "$STATUS"
cat "$STATUS"
