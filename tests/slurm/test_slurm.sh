#!/usr/bin/env bash
# The sbatch templates on a real Slurm: starts a one-host Slurm (munge, slurmctld, slurmd) under a
# temp folder with scripts/slurm/local-slurm.sh, runs scripts/slurm/train-cpu.sbatch with 4 ranks
# through srun --mpi=pmix for a tiny GPT, checks metrics and checkpoints, then stops a second job
# with `scancel --signal=USR1` and checks checkpoint, exit code 3, requeue and resume; a third job
# is stopped by the template's own #SBATCH --signal at its time limit; plan.sbatch runs once.
# Rules: installs and builds nothing (strata from STRATA_BIN or <repo>/build/strata); every wait
# has a timeout inside one overall deadline (the test takes well under 3 minutes); the EXIT trap
# stops every daemon it started, also on failure or Ctrl-C. Exit 0 pass, 1 fail, 77 skip (no
# Slurm or munge binaries, or not root). STRATA_SLURM_KEEP=1 keeps the temp folder.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STRATA="${STRATA_BIN:-$ROOT/build/strata}"
LOCAL_SLURM="$ROOT/scripts/slurm/local-slurm.sh"
TRAIN_CPU="$ROOT/scripts/slurm/train-cpu.sbatch"

for tool in slurmctld slurmd sbatch scontrol scancel squeue munged mungekey; do
  if ! command -v "$tool" > /dev/null; then
    echo "SKIP: $tool not installed (scripts/install-deps.sh installs slurmctld slurmd" \
      "slurm-client munge)"
    exit 77
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: a local Slurm needs root (slurmd launches the job tasks)"
  exit 77
fi
if [ ! -x "$STRATA" ]; then
  echo "FAIL: no strata binary at $STRATA (set STRATA_BIN or build the cpu preset)"
  exit 1
fi
STRATA="$(realpath "$STRATA")"

WORK="$(mktemp -d /tmp/strata-slurm-XXXXXX)"
chmod 711 "$WORK"  # munged wants o+x on every folder above its socket
cleanup() {
  "$LOCAL_SLURM" down "$WORK/slurm" > /dev/null 2>&1
  if [ "${STRATA_SLURM_KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP  # runs the EXIT trap
cd "$WORK" || exit 1
start=$SECONDS
deadline=$((SECONDS + 170))  # every wait below also stops here
PASSES=0
FAILURES=0
pass() {
  echo "PASS: $1"
  PASSES=$((PASSES + 1))
}
fail() {
  echo "FAIL: $1"
  FAILURES=$((FAILURES + 1))
}
check() {  # check DESCRIPTION -- command...: the command must succeed
  local what="$1"
  shift 2
  if "$@"; then pass "$what"; else fail "$what"; fi
}
# wait_for SECONDS DESCRIPTION -- command...: polls every 0.5 s until the command succeeds;
# false (and a FAIL line) after SECONDS or at the overall deadline.
wait_for() {
  local limit=$((SECONDS + $1)) what="$2" since=$SECONDS
  shift 3
  [ "$limit" -gt "$deadline" ] && limit=$deadline
  until "$@"; do
    if [ "$SECONDS" -ge "$limit" ]; then
      fail "$what (gave up after $((SECONDS - since)) s, $((SECONDS - start)) s into the test)"
      return 1
    fi
    sleep 0.5
  done
  echo "  ($what: $((SECONDS - start)) s into the test)"
}
finish() {
  echo "$PASSES passed, $FAILURES failed ($((SECONDS - start)) s)"
  [ "$FAILURES" -eq 0 ] && exit 0
  exit 1
}
die() {  # a failure later checks cannot recover from: show the logs and stop
  fail "$1"
  local f
  for f in "$WORK"/*.out "$WORK"/slurm/log/slurmctld.log "$WORK"/slurm/log/slurmd.log; do
    [ -f "$f" ] && { echo "---- $f"; tail -n 25 "$f"; }
  done
  finish
}

job_field() {  # job_field JOBID KEY: one field of `scontrol show job` (empty once purged)
  scontrol show job "$1" 2> /dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
job_ended() {
  case "$(job_field "$1" JobState)" in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
      return 0 ;;
    "") return 0 ;;  # purged from slurmctld's memory (MinJobAge)
  esac
  return 1
}
steps_of() {  # steps_of METRICS: the step numbers of the loss records, one per line
  [ -f "$1" ] && grep '"loss"' "$1" | sed -n 's/.*"step": \([0-9]*\).*/\1/p'
}
step_count_at_least() { [ "$(steps_of "$1" | wc -l)" -ge "$2" ]; }

# == A one-host Slurm with 6 declared cores (config_overrides), so that #SBATCH
# --ntasks-per-node=4 fits a 2-core machine next to the 2-rank time-limit job.
export STRATA_SLURM_CPUS=6
"$LOCAL_SLURM" up "$WORK/slurm" || die "local Slurm did not start"
export SLURM_CONF="$WORK/slurm/slurm.conf"
pass "local Slurm up ($((SECONDS - start)) s)"

# == Inputs: a small GPT and data; the jobs inherit this environment (sbatch --export=ALL).
"$STRATA" model gpt --layers 2 --hidden 32 --heads 4 --seq 16 --vocab 64 --seed 3 -o model.h5 \
  > /dev/null || die "strata model gpt"
"$STRATA" data synthetic --vocab 64 --seq 16 --count 64 --seed 1 -o train.h5 > /dev/null ||
  die "strata data synthetic"
cat > run.yaml << 'YAML'
model: {path: model.h5}
data: {path: train.h5}
train: {steps: 4, global_batch: 8, log_every: 1, optimizer: {kind: adamw, lr: 1.0e-3}}
plan: {method: data-parallel}
checkpoint: {every_steps: 2, keep: 2}
YAML
export STRATA_BIN="$STRATA"
# 4 ranks on 2 cores: without yielding, ranks waiting in MPI spin and starve the others (a step
# takes ~1.5 s instead of ~0.05 s). mpirun --oversubscribe sets this itself; srun cannot know.
export OMPI_MCA_mpi_yield_when_idle=1

# == Job "limit", in the background of the next two: the template's own #SBATCH --signal=USR1@120
# with a 1-minute limit. slurmctld checks time limits every 30 s from its start, so the USR1
# arrives about 30 s into this test, well after the ranks started training.
jid_limit="$(sbatch --parsable --job-name=limit --time=1 --ntasks-per-node=2 "$TRAIN_CPU" \
  run.yaml --set train.steps=100000 --set checkpoint.every_steps=0)" || die "sbatch (limit)"

# == Job "short": train-cpu.sbatch, 4 tasks, 4 steps, a checkpoint every 2 steps.
jid1="$(sbatch --parsable --job-name=short --time=5 "$TRAIN_CPU" run.yaml)" ||
  die "sbatch train-cpu.sbatch"
run1="$WORK/runs/short-$jid1"
wait_for 60 "job $jid1 ended" -- job_ended "$jid1" || die "job $jid1 did not end"
check "job $jid1 COMPLETED with exit code 0:0" -- \
  test "$(job_field "$jid1" JobState) $(job_field "$jid1" ExitCode)" = "COMPLETED 0:0"
check "4 ranks through srun --mpi=pmix" -- \
  grep -qE '^\[r0/4\] strata train:.*4 rank' "short-$jid1.out"
check "metrics.jsonl holds steps 1..4 with a loss" -- \
  test "$(steps_of "$run1/metrics.jsonl" | tr '\n' ' ')" = "1 2 3 4 "
check "plan.json and config.yaml in runs/short-$jid1" -- \
  test -s "$run1/plan.json" -a -s "$run1/config.yaml"
# Checkpoints (every_steps: 2, keep: 2): the newest reads back.
check "checkpoint $run1/checkpoints/ckpt_step00000004.h5 written" -- \
  test -s "$run1/checkpoints/ckpt_step00000004.h5"
inspect="$("$STRATA" inspect "$run1/checkpoints/ckpt_step00000004.h5" 2>&1)"
check "strata inspect reads it as strata-checkpoint, step 4" -- \
  grep -qE "strata-checkpoint.*step 4\b|step 4\b.*strata-checkpoint" <<< "$inspect"

# == Job "long": a long run stopped by USR1, requeued, resumed.
jid2="$(sbatch --parsable --job-name=long --time=5 "$TRAIN_CPU" run.yaml \
  --set train.steps=100000 --set checkpoint.every_steps=0)" || die "sbatch (job 2)"
run2="$WORK/runs/long-$jid2"
log2="$WORK/long-$jid2.out"
wait_for 45 "job $jid2 trained 3 steps" -- step_count_at_least "$run2/metrics.jsonl" 3 ||
  die "job $jid2 did not start training"
# Without --batch (or --full) scancel signals the tasks of the job's steps, here the srun step of
# the strata ranks, and not the batch shell: the same path as #SBATCH --signal=USR1@120.
scancel --signal=USR1 "$jid2"
signalled_at=$SECONDS
requeued() {
  [ "$(job_field "$jid2" Restarts)" = 1 ] && [ "$(job_field "$jid2" JobState)" = PENDING ]
}
wait_for 40 "job $jid2 requeued" -- requeued || die "job $jid2 was not requeued after USR1"
echo "  (USR1 to requeue: $((SECONDS - signalled_at)) s)"
check "job $jid2: Restarts=1, pending again" -- requeued
check "srun returned 3 and the batch script requeued job $jid2" -- \
  grep -qz "strata exited with code 3.*requeueing job $jid2" "$log2"
check "rank 0 logged the checkpoint and exit 3" -- grep -qE "checkpoint.*exit 3" "$log2"
# The checkpoint holds the last step the first attempt recorded.
cp "$run2/metrics.jsonl" metrics_attempt0.jsonl
k="$(steps_of metrics_attempt0.jsonl | tail -1)"
ckpt="$(printf '%s/checkpoints/ckpt_step%08d.h5' "$run2" "${k:-0}")"
check "checkpoint at the last step before the signal (step $k)" -- test -s "$ckpt"
check "strata inspect reads it: step $k" -- \
  grep -qE "strata-checkpoint.*step $k\b|step $k\b.*strata-checkpoint" \
  <<< "$("$STRATA" inspect "$ckpt" 2>&1)"
# Slurm holds a requeued job for ~2 minutes (Reason=BeginTime); release it now, but not in the
# second the first attempt ended: slurmd revokes a finished job's credential with a timestamp in
# whole seconds and refuses ("already killed, do not launch batch job") any launch whose
# credential is not newer, which leaves the job held for good.
sleep 2
scontrol update JobId="$jid2" StartTime=now || fail "scontrol update StartTime=now"
attempt1_steps() {  # the steps the second attempt logged ("step N/100000 |")
  sed -n '/attempt 1:/,$p' "$log2" | sed -n 's/.*\] step *\([0-9]*\)\/[0-9]* |.*/\1/p'
}
resumed_steps() { [ "$(attempt1_steps | wc -l)" -ge 3 ]; }
wait_for 45 "requeued job $jid2 trained 3 steps" -- resumed_steps ||
  die "the requeued job did not train"
check "the requeued run starts at step $((k + 1)) (resumed, not from step 1)" -- \
  test "$(attempt1_steps | head -1)" = "$((k + 1))"
metrics_continue() {  # the first k records are the first attempt's, then k+1, k+2, ...
  head -n "$(wc -l < metrics_attempt0.jsonl)" "$run2/metrics.jsonl" |
    cmp -s - metrics_attempt0.jsonl &&
    steps_of "$run2/metrics.jsonl" | awk '$1 != NR { bad = 1 } END { exit bad || NR <= '"$k"' }'
}
check "metrics.jsonl continues after step $k" -- metrics_continue

# A plain scancel: SIGTERM reaches the ranks and the batch shell; the job ends cancelled and is
# not requeued again.
scancel "$jid2"
wait_for 40 "job $jid2 ended" -- job_ended "$jid2" || die "job $jid2 did not end after scancel"
check "plain scancel: job $jid2 CANCELLED, not requeued (Restarts=1)" -- \
  test "$(job_field "$jid2" JobState) $(job_field "$jid2" Restarts)" = "CANCELLED 1"

# == Job "limit": USR1 from #SBATCH --signal, checkpoint, exit 3, requeued.
limit_requeued() { [ "$(job_field "$jid_limit" Restarts)" = 1 ]; }
wait_for 40 "job $jid_limit (1-minute limit) requeued" -- limit_requeued
check "#SBATCH --signal=USR1@120 reached the ranks: rank 0 logged checkpoint and exit 3" -- \
  grep -qE "checkpoint.*exit 3" "limit-$jid_limit.out"
check "srun returned 3 and the batch script requeued job $jid_limit" -- \
  grep -qz "strata exited with code 3.*requeueing job $jid_limit" "limit-$jid_limit.out"
scancel "$jid_limit"

# == plan.sbatch: one task, plans for the config's cluster (here 1 x 4 CPU devices).
jid3="$(sbatch --parsable --job-name=plan --time=5 "$ROOT/scripts/slurm/plan.sbatch" run.yaml \
  --set cluster.devices_per_host=4)" || die "sbatch plan.sbatch"
wait_for 40 "plan job $jid3 ended" -- job_ended "$jid3"
check "plan job $jid3 COMPLETED with exit code 0:0" -- \
  test "$(job_field "$jid3" JobState) $(job_field "$jid3" ExitCode)" = "COMPLETED 0:0"
check "plan.json in runs/plan-$jid3" -- grep -q '"strata-plan"' "runs/plan-$jid3/plan.json"
# train-gpu.sbatch needs GPUs and the cuda build; here only its shell syntax is checked.
check "train-gpu.sbatch parses" -- bash -n "$ROOT/scripts/slurm/train-gpu.sbatch"

finish
