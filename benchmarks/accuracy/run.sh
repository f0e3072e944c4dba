#!/usr/bin/env bash
# Accuracy per CPU budget (make bench-accuracy): trains every run below on one thread,
# one after the other, then writes benchmarks/results/accuracy.{md,json,png}.
#   bash benchmarks/accuracy/run.sh            # ~160 minutes on a quiet 2-core machine
# Each run folder is runs/accuracy/<name>; an existing one is replaced (--overwrite).
set -euo pipefail
cd "$(dirname "$0")/../.."
GEOFF=.venv/bin/geoff
B=../shared/data/3bpa
export OMP_NUM_THREADS=1
# 3BPA (adds N; ωB97X), 30 minutes: from scratch vs fine-tuned from the shipped ethanol potential
$GEOFF train benchmarks/accuracy/3bpa-egnn-scratch.yaml --overwrite --no-progress
$GEOFF finetune ethanol-egnn $B/train_300K.xyz --isolated-atoms $B/iso_atoms.xyz --test $B/train_mixedT.xyz \
    --max-time-minutes 30 --run-dir runs/accuracy/3bpa-egnn-finetune --overwrite --no-progress
# ethanol, 100 minutes: the shipped recipe with a longer budget
$GEOFF train benchmarks/accuracy/ethanol-egnn-100.yaml --overwrite --no-progress
.venv/bin/python benchmarks/accuracy_table.py runs/accuracy/*/
