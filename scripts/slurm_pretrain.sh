#!/bin/bash
# Data-parallel `sslc pretrain` on several nodes under Slurm: one MPI rank
# per node, OpenMP threads on that node's cores, a requeued job continuing
# from its last checkpoint. docs/training.md ("Several processes and
# machines") explains the semantics, docs/scaling.md how to size the batch.
#
# Submit from the root of the sslc source tree (it is built there, in
# build-mpi/, on the first run), with the run folder on a file system every
# node sees and `sslc pretrain` options after the script name:
#
#   SSLC_OUT=/shared/runs/simclr-r50 SSLC_BATCH_PER_NODE=256 \
#       sbatch --nodes=8 --cpus-per-task=64 scripts/slurm_pretrain.sh \
#       --data manifest:/shared/imagenet/train.manifest --arch resnet50 \
#       --width 64 --no-cifar-stem --size 224 --epochs 100 --knn-bank none
#
# (A manifest, written once by `sslc scan /shared/imagenet/train --manifest
# ...`, spares every rank a scan of the whole folder at start-up. MoCo on
# more than 8 ranks, or a count that does not divide 8: add --shuffle-groups
# with a multiple of the rank count.) Load the site's MPI, meson and ninja
# (`module load ...`) before sbatch: the job inherits them.
#
# Environment (sbatch exports the submitting shell's by default):
#   SSLC_OUT             run folder, required: checkpoints, metrics.jsonl,
#                        config.txt. On a shared file system: rank 0 writes
#                        it, every rank reads it when resuming.
#   SSLC_BATCH_PER_NODE  pairs per node and step (default 256); --batch, the
#                        global batch, is this times the number of nodes.
#   SSLC_SRC             source tree (default: the folder sbatch ran in).
#   SSLC_BUILD           build folder (default: $SSLC_SRC/build-mpi).
#   SSLC_SRUN_MPI        srun's --mpi plugin (default pmix: what Debian's and
#                        most sites' Open MPI use; see `srun --mpi=list`).
#
# The options below are defaults; options given to sbatch override them.
#
# How many nodes. Each adds SSLC_BATCH_PER_NODE pairs to the global batch;
# docs/scaling.md has the node count at which the network starts to cost.
#SBATCH --nodes=4
# One rank per node: ranks talk over the network only for gradients and
# the gathers, and OpenMP uses the node's cores inside the rank. (Several
# ranks per node also work, as long as the global batch splits over them.)
#SBATCH --ntasks-per-node=1
# The rank's threads: make it the node's physical core count.
#SBATCH --cpus-per-task=32
# The whole node: every step waits for the slowest rank at its collectives,
# so a neighbour's job on one node would slow all of them.
#SBATCH --exclusive
#SBATCH --mem=0
#SBATCH --time=24:00:00
#SBATCH --job-name=sslc-pretrain
# %x job name, %j job id. Append: a requeued job keeps writing to the same
# file (Slurm would truncate it otherwise), so one log holds the whole run.
#SBATCH --output=%x-%j.out
#SBATCH --open-mode=append
# A job that ran out of time is requeued by this script (below), and Slurm
# requeues one whose node failed; it continues from the run's last.h5.
#SBATCH --requeue
# USR1 to this script (not to sslc: "B:") 10 minutes before the time limit
# (Slurm may send it up to a minute early). The script then sends sslc one
# SIGTERM (scancel): every rank finishes the step it is in, rank 0 writes a
# checkpoint, and the job is requeued. The margin must cover a step plus a
# checkpoint write; raise it for steps of minutes.
#SBATCH --signal=B:USR1@600

set -euo pipefail

# The time-limit signal (above) can come at any moment, even during the
# build: without a handler, USR1 would end this script on the spot.
stop_requested=0 forwarded=0
srun_pid=
# shellcheck disable=SC2317 # (run by the trap, not unreachable)
on_time_limit() {
    stop_requested=1
    echo "slurm_pretrain.sh: time limit near: stopping sslc at the end of its step"
    # SIGTERM to the tasks of the job's steps, straight from slurmd, once:
    # signalling srun itself would make it end the step (its tasks killed
    # before they save), and a second SIGTERM ends sslc without saving.
    if [[ -n $srun_pid ]] && ((!forwarded)); then
        forwarded=1
        scancel --signal=TERM "$SLURM_JOB_ID" || true
    fi
}
trap on_time_limit USR1

out=${SSLC_OUT:?set SSLC_OUT to the run folder, on a file system every node sees}
per_node=${SSLC_BATCH_PER_NODE:-256}
src=${SSLC_SRC:-${SLURM_SUBMIT_DIR:-$PWD}}
build=${SSLC_BUILD:-$src/build-mpi}
mpi_plugin=${SSLC_SRUN_MPI:-pmix}
nodes=${SLURM_JOB_NUM_NODES:?run this script with sbatch}
ranks=${SLURM_NTASKS:?run this script with sbatch}
threads=${SLURM_CPUS_PER_TASK:?give --cpus-per-task: the threads of each rank}

# The script sets these itself; a second copy among the arguments would
# silently win over them (sslc takes the last).
for arg in "$@"; do
    case $arg in
    --batch | --batch=* | --out | --out=* | --resume | --resume=* | --threads | --threads=*)
        echo "slurm_pretrain.sh: do not pass ${arg%%=*}: the script sets it" \
            "(SSLC_BATCH_PER_NODE, SSLC_OUT, --cpus-per-task)" >&2
        exit 2
        ;;
    esac
done
case $out in
/*) ;;
*)
    echo "slurm_pretrain.sh: SSLC_OUT must be an absolute path (got '$out')" >&2
    exit 2
    ;;
esac
if ! [[ $per_node =~ ^[1-9][0-9]*$ ]]; then
    echo "slurm_pretrain.sh: SSLC_BATCH_PER_NODE must be a positive integer (got '$per_node')" >&2
    exit 2
fi

# Global batch: --batch is the batch of the whole job and sslc splits it
# evenly over the ranks, so each node trains SSLC_BATCH_PER_NODE pairs per
# step and the learning rate is scaled for the global batch (x B/256).
batch=$((per_node * nodes))
if ((batch % ranks != 0)); then
    echo "slurm_pretrain.sh: a global batch of $batch pairs does not split over $ranks ranks" >&2
    exit 2
fi

# Build once, on the first node, into a folder all nodes see. The lock
# keeps two jobs from building in the same folder at once; ninja does
# nothing when the build is current. -Dmpi=enabled fails the build when no
# MPI is found, rather than building a binary that would run every rank as
# a separate single process. -Dnative=true (the default) tunes for the
# build node's CPU: on nodes of different CPU models add -Dnative=false.
(
    flock 9
    if [[ ! -f $build/build.ninja ]]; then
        meson setup "$build" "$src" -Dmpi=enabled -Dtests=disabled -Dbuildtype=release
    fi
    ninja -C "$build"
) 9>"$build.lock"
sslc=$build/src/cli/sslc

# OpenMP inside each rank, one thread per CPU Slurm gave it; sslc's
# --threads says the same (and is what the run's config.txt records).
export OMP_NUM_THREADS=$threads

# Slurm 22.05 and later do not pass the job's --cpus-per-task on to srun:
# say it again, or each rank gets one CPU. --kill-on-bad-exit: a rank that
# fails takes the others down instead of leaving them in a collective.
launch=(srun --mpi="$mpi_plugin" --ntasks="$ranks" --ntasks-per-node="${SLURM_NTASKS_PER_NODE:-1}"
    --cpus-per-task="$threads" --kill-on-bad-exit=1)

# sslc starts MPI only when a launcher says so (PMIx / PMI variables). With
# the wrong --mpi plugin every rank would see none and train the whole
# batch alone, all writing to the same run folder: check before training.
seen=$("${launch[@]}" "$sslc" version | grep -c "MPI.*, $ranks ranks" || true)
if [[ $seen != "$ranks" ]]; then
    echo "slurm_pretrain.sh: srun --mpi=$mpi_plugin did not start $ranks MPI ranks" \
        "($seen said so); set SSLC_SRUN_MPI (srun --mpi=list shows the choices)" >&2
    exit 1
fi

# A requeued job (or a second submission) continues the run in SSLC_OUT:
# --resume restores weights, optimizer, schedule, queue and data position,
# and the options given here are applied on top of the stored ones.
resume=()
if [[ -e $out/last.h5 ]]; then
    resume=(--resume "$out")
    echo "slurm_pretrain.sh: resuming $out (restart ${SLURM_RESTART_COUNT:-0})"
fi

echo "slurm_pretrain.sh: $nodes nodes, $ranks ranks x $threads threads," \
    "batch $per_node per node, $batch in all; run folder $out"

if ((stop_requested)); then
    echo "slurm_pretrain.sh: the time-limit signal came before training started;" \
        "give a longer --time or a later --signal" >&2
    exit 1
fi
"${launch[@]}" "$sslc" pretrain "$@" ${resume[@]+"${resume[@]}"} \
    --batch "$batch" --threads "$threads" --out "$out" &
srun_pid=$!
if ((stop_requested && !forwarded)); then # it came just before srun started
    on_time_limit
fi
# `wait` returns early when USR1 arrives; wait again until srun has ended.
while :; do
    status=0
    wait "$srun_pid" || status=$?
    if ((status > 128)) && kill -0 "$srun_pid" 2>/dev/null; then
        continue
    fi
    break
done

# Interrupted before the schedule ended (sslc exits 1 after saving): put the
# job back in the queue; it resumes from last.h5 when it starts again.
if ((stop_requested && status != 0)) && [[ -e $out/last.h5 ]]; then
    echo "slurm_pretrain.sh: requeueing job $SLURM_JOB_ID"
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$status"
