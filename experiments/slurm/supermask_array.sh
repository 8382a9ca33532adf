#!/bin/bash
# A Slurm job array running the supermask experiment's units in N shards,
# then one dependent job merging them. Submit from the repository root:
#   N=4 sbatch --array=0-3 experiments/slurm/supermask_array.sh
#   sbatch --dependency=afterok:<array job id> --wrap \
#     "target/release/ltk merge runs/supermask_fashion.shard-*"
# Each task writes runs/supermask_fashion.shard-<i>-of-<N>; re-submitting a
# task continues it (finished units are kept).
#SBATCH --job-name=supermask
#SBATCH --cpus-per-task=2
#SBATCH --time=01:00:00
set -euo pipefail
N=${N:-4}
target/release/ltk supermask --config experiments/supermask_fashion.toml \
  --shard "${SLURM_ARRAY_TASK_ID}/${N}" --quiet
