#!/usr/bin/env bash
# Fine-tuning demo (numbers in MODEL_CARD.md): the shipped ethanol-egnn potential fine-tuned on 50 of
# the 300 methanol configurations in train_eth_meth.xyz, against the same architecture trained from
# scratch on the same 50 (same 50/10 split: seed 0), both tested on the 145 methanol configurations of
# test_eth_meth.xyz; plus the ethanol-only potential on methanol as it is. 8 minutes of training each.
#   bash potentials/ethanol-egnn/finetune_demo.sh      (from the repository root; outputs in runs/)
set -euo pipefail
D=${GEOFF_DATA:-../shared/data/ethanol}
GEOFF=${GEOFF:-.venv/bin/geoff}
export OMP_NUM_THREADS=1
mkdir -p runs
$GEOFF finetune ethanol-egnn "$D/train_eth_meth.xyz" --config-types methanol --n-train 50 --n-valid 10 \
    --test "$D/test_eth_meth.xyz" --energy-weight 5 --max-epochs 5000 --max-time-minutes 8 \
    --run-dir runs/methanol-finetune --overwrite --no-progress > runs/methanol-finetune.log 2>&1 &
finetune=$!
$GEOFF train potentials/ethanol-egnn/methanol-scratch.yaml --overwrite --no-progress > runs/methanol-scratch.log 2>&1 &
scratch=$!
wait $finetune || { tail -n 5 runs/methanol-finetune.log; exit 1; }
wait $scratch || { tail -n 5 runs/methanol-scratch.log; exit 1; }
for run in finetune scratch; do
    $GEOFF evaluate runs/methanol-$run/best.pt "$D/test_eth_meth.xyz" --config-types methanol \
        --output runs/methanol-eval --name "$run" --no-progress
done
$GEOFF evaluate ethanol-egnn "$D/test_eth_meth.xyz" --config-types methanol --output runs/methanol-eval \
    --name ethanol-only --no-progress
