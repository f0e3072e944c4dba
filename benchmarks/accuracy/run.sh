#!/usr/bin/env bash
# Accuracy per CPU budget (make bench-accuracy): geoff's models and MACE small (trained by
# its own trainer, benchmarks/peers/train_mace.py, in benchmarks/.venv-peers from
# `make bench-peers`) on the same data, one torch thread each, then the table and plot
# benchmarks/results/accuracy.{md,json,png}.
#
#   bash benchmarks/accuracy/run.sh            # ~100 minutes on a 2-core machine
#   LONG=1 bash benchmarks/accuracy/run.sh     # then the 120-minute pairs: ~4 more hours
#
# The runs of one data set start together and share the machine for the same 45 wall-clock
# minutes (three processes on two cores: ~30 CPU minutes each; the table gives each run's CPU
# minutes). Run folders are runs/accuracy/<name>; an existing one is replaced (--overwrite).
set -euo pipefail
cd "$(dirname "$0")/../.."
GEOFF=.venv/bin/geoff
MACE="benchmarks/.venv-peers/bin/python benchmarks/peers/train_mace.py"
B=../shared/data/3bpa
WALL=${WALL:-45}
export OMP_NUM_THREADS=1
mkdir -p runs/accuracy
test -x benchmarks/.venv-peers/bin/python || { echo "MACE's environment is missing: make bench-peers"; exit 1; }

# ethanol (rMD17, PBE/def2-SVP): EGNN, SE(3)-Transformer, MACE small, side by side
$GEOFF train benchmarks/accuracy/ethanol-egnn-cpu30.yaml --overwrite --no-progress --max-time-minutes "$WALL" &
$GEOFF train benchmarks/accuracy/ethanol-se3-cpu30.yaml --overwrite --no-progress --max-time-minutes "$WALL" &
$MACE --data ethanol --budget-minutes "$WALL" > runs/accuracy-mace-ethanol.log 2>&1 &
wait

# 3BPA (adds N; ωB97X; tested on 300/600/1200 K): fine-tuned from the shipped ethanol potential,
# from scratch, MACE small, side by side
$GEOFF finetune ethanol-egnn $B/train_300K.xyz --isolated-atoms $B/iso_atoms.xyz --test $B/train_mixedT.xyz \
    --max-time-minutes "$WALL" --run-dir runs/accuracy/3bpa-egnn-finetune-cpu30 --overwrite --no-progress &
$GEOFF train benchmarks/accuracy/3bpa-egnn-scratch-cpu30.yaml --overwrite --no-progress --max-time-minutes "$WALL" &
$MACE --data 3bpa --budget-minutes "$WALL" > runs/accuracy-mace-3bpa.log 2>&1 &
wait

# 120 CPU minutes: geoff's EGNN and MACE small, one core each, 120 wall minutes side by side
if [ "${LONG:-0}" = 1 ]; then
  $GEOFF train benchmarks/accuracy/ethanol-egnn-100.yaml --overwrite --no-progress --max-time-minutes 120 \
      --run-dir runs/accuracy/ethanol-egnn-cpu120 &
  $MACE --data ethanol --budget-minutes 120 > runs/accuracy-mace-ethanol-120.log 2>&1 &
  wait
  $GEOFF train benchmarks/accuracy/3bpa-egnn-scratch-cpu120.yaml --overwrite --no-progress &
  $MACE --data 3bpa --budget-minutes 120 > runs/accuracy-mace-3bpa-120.log 2>&1 &
  wait
fi
.venv/bin/python benchmarks/accuracy_table.py runs/accuracy/*/
