#!/usr/bin/env bash
# The Slurm suite: qst on a real one-node Slurm cluster (see tests/slurm/run.sh).
exec bash "$(dirname "$0")/../slurm/run.sh" "$@"
