#!/bin/bash
# Run a spillover scenario as a Slurm job array of N shards, then merge.
#
#   sbatch --array=1-8 deploy/slurm-shards.sh scenarios/quickstart.toml 8 /shared/run1
#   # when every task has finished:
#   spillover merge /shared/run1/shards --out /shared/run1/output
#
# Each task writes /shared/run1/shards/shard-K-of-N.spillover. The scenario,
# its graph and any partition files must be readable at the same paths on
# every node (a shared file system), and every node must run the same
# spillover version (merge refuses shards of different versions).
#SBATCH --job-name=spillover
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --output=spillover-%A_%a.log
set -euo pipefail
scenario="$1"
shards="$2"
out="$3"
mkdir -p "$out/shards"
spillover run "$scenario" --quiet --threads "${SLURM_CPUS_PER_TASK:-1}" \
    --shard "${SLURM_ARRAY_TASK_ID}/${shards}" --out "$out/shards"
