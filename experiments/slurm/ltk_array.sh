#!/bin/bash
# A Slurm job array running one experiment's independent units in N shards,
# then one dependent job merging them. Submit from the repository root, e.g.
# for the supermask experiment on Fashion-MNIST in 4 shards:
#   JOB=$(CMD=supermask CONFIG=experiments/supermask_fashion.toml N=4 \
#         sbatch --parsable --array=0-3 experiments/slurm/ltk_array.sh)
#   sbatch --dependency=afterok:$JOB --wrap \
#     "target/release/ltk merge runs/supermask_fashion.shard-*"
# CMD is imp, lmc, strong or supermask (with CONFIG); for ntk-compare set
# CMD=ntk-compare and pass its flags in ARGS instead of CONFIG. Each task
# writes runs/<name>.shard-<i>-of-<N>; re-submitting a task continues it
# (finished units are kept). Units are independent, so the merged summary
# equals one unsharded run's (wall times aside).
#SBATCH --job-name=ltk
#SBATCH --cpus-per-task=2
#SBATCH --time=04:00:00
set -euo pipefail
: "${CMD:?set CMD (imp, lmc, strong, supermask or ntk-compare)}"
N=${N:-4}
if [[ -n "${CONFIG:-}" ]]; then
  set -- --config "$CONFIG"
else
  set --
fi
# shellcheck disable=SC2086  # ARGS is a list of flags
target/release/ltk "$CMD" "$@" ${ARGS:-} --shard "${SLURM_ARRAY_TASK_ID}/${N}" --quiet
