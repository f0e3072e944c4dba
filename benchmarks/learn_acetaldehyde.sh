#!/bin/bash
# geoff learn on a molecule in no shipped data set: acetaldehyde from ethanol-egnn, PBE/def2-SVP labels
# by PySCF, 300 K. ~50 minutes on the project's 2-core machine; the same command continues a killed run.
# Then: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learn_vs_random.py runs/learn-acetaldehyde --name acetaldehyde
set -e
cd "$(dirname "$0")/.."
mkdir -p runs
[ -f runs/acetaldehyde.xyz ] || .venv/bin/python -c \
  "from ase.build import molecule; from ase.io import write; write('runs/acetaldehyde.xyz', molecule('CH3CHO'))"
export OMP_NUM_THREADS=1
exec .venv/bin/geoff learn ethanol-egnn runs/acetaldehyde.xyz --dft PBE/def2-SVP --temperature 300 \
  --steps 1000 --budget-labels 200 --max-per-iteration 25 --initial-labels 25 --committee-size 4 \
  --train-minutes 2 --max-epochs 10000 --max-hours 1.25 --test-frames 20 --workers 2 \
  --run-dir runs/learn-acetaldehyde "$@"
