#!/bin/bash

# Parameters
#SBATCH --account=lab
#SBATCH --constraint=h100
#SBATCH --error=<RUN_DIR>/submitit/%j_0_log.err
#SBATCH --gpus-per-node=8
#SBATCH --job-name=workbench-<RUN_ID>
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --open-mode=append
#SBATCH --output=<RUN_DIR>/submitit/%j_0_log.out
#SBATCH --partition=gpu
#SBATCH --qos=high
#SBATCH --requeue
#SBATCH --signal=USR2@120
#SBATCH --time=240
#SBATCH --wckey=submitit

# command
export SUBMITIT_EXECUTOR=slurm
srun --unbuffered --output <RUN_DIR>/submitit/%j_%t_log.out --error <RUN_DIR>/submitit/%j_%t_log.err <PYTHON> -u -m submitit.core._submit <RUN_DIR>/submitit
