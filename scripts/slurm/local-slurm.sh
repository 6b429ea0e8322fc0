#!/usr/bin/env bash
# A single-host Slurm (munge + slurmctld + slurmd) that lives entirely under one folder, with no
# systemd and no cgroups: the recipe of TOOLCHAIN.md section 7.1. Used by tests/slurm/test_slurm.sh
# and by developers who want to try the sbatch templates on one machine.
#   scripts/slurm/local-slurm.sh up DIR      start the daemons; prints the line to source
#   scripts/slurm/local-slurm.sh down DIR    cancel its jobs, stop every daemon it started
#   scripts/slurm/local-slurm.sh status DIR  sinfo + squeue of that Slurm
# Rules: everything (config, keys, state, logs, sockets, pid files) stays under DIR; `down` only
# touches processes whose pids `up` recorded there, so it is safe to run twice or after a failed
# `up`. Every folder above DIR must be o+x (munged checks its socket's path). Needs root (slurmd
# launches the tasks) and Debian's slurmctld, slurmd, slurm-client and munge.
# Ports: SlurmctldPort/SlurmdPort are the first free pair from STRATA_SLURM_PORT (default 6817),
# so two of these Slurms (or a system one) can run side by side.
# STRATA_SLURM_CPUS=N declares the node with N cores whatever the hardware has (slurmd's
# config_overrides), so that a job script with --ntasks-per-node=4 runs on a 2-core machine:
# -O/--overcommit alone does not lift the per-node limit of --ntasks-per-node.
set -euo pipefail

usage() {
  echo "usage: $0 up|down|status DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
cmd="$1"
D="$(realpath -m "$2")"
export SLURM_CONF="$D/slurm.conf"

port_busy() {  # port_busy PORT: true when something listens on 127.0.0.1:PORT
  (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null
}

pid_of() {  # pid_of FILE: the pid recorded in FILE (empty when there is none)
  cat "$1" 2> /dev/null || true
}

pid_alive() {  # pid_alive FILE: the pid recorded in FILE is a running process
  local pid
  pid="$(pid_of "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null
}

# wait_gone SECONDS FILE...: waits until none of the recorded pids runs; false on timeout.
wait_gone() {
  local deadline=$((SECONDS + $1)) f alive
  shift
  while :; do
    alive=0
    for f in "$@"; do pid_alive "$f" && alive=1; done
    [ "$alive" -eq 0 ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

up() {
  for tool in munged mungekey slurmctld slurmd sinfo scontrol; do
    command -v "$tool" > /dev/null || {
      echo "local-slurm: $tool not found (scripts/install-deps.sh installs it)" >&2
      exit 1
    }
  done
  if [ "$(id -u)" -ne 0 ]; then
    echo "local-slurm: must run as root (slurmd launches the tasks)" >&2
    exit 1
  fi
  if pid_alive "$D/run/slurmctld.fg.pid"; then
    echo "local-slurm: already running under $D" >&2
    exit 1
  fi
  mkdir -p "$D"/{munge,state,spool,log,run,tmp}
  chmod 711 "$D/munge"  # munged refuses a socket dir without o+x
  [ -f "$D/munge/munge.key" ] || mungekey -c -k "$D/munge/munge.key"

  local port="${STRATA_SLURM_PORT:-6817}"
  while port_busy "$port" || port_busy $((port + 1)); do port=$((port + 2)); done
  # The node is "localhost" on both sides, so a random container hostname does not matter. The
  # hardware line comes from slurmd -C (CPUs alone would log "socket/core boundaries" changes).
  local hw overrides=""
  hw="$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //')"
  if [ -n "${STRATA_SLURM_CPUS:-}" ]; then
    hw="CPUs=$STRATA_SLURM_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$STRATA_SLURM_CPUS"
    hw+=" ThreadsPerCore=1 $(slurmd -C | head -1 | grep -o 'RealMemory=[0-9]*')"
    overrides="SlurmdParameters=config_overrides"
  fi
  cat > "$D/slurm.conf" << CONF
# Written by scripts/slurm/local-slurm.sh: a one-host Slurm for tests; see TOOLCHAIN.md 7.1.
ClusterName=strata-local
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
TmpFS=$D/tmp
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
MailProg=/bin/true
KillWait=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
ReturnToService=2
EnforcePartLimits=ALL
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
$overrides
NodeName=localhost $hw State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  /usr/sbin/munged --socket="$D/munge/munge.sock" --key-file="$D/munge/munge.key" \
    --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
    --seed-file="$D/munge/munged.seed"  # forks; its pid lands in munged.pid
  # -D keeps the daemons in the foreground so that their pids are ours to record and stop;
  # -i makes slurmctld ignore state left by an earlier run in the same DIR.
  setsid slurmctld -D -i -f "$SLURM_CONF" > "$D/log/slurmctld.out" 2>&1 < /dev/null &
  echo $! > "$D/run/slurmctld.fg.pid"
  setsid slurmd -D -f "$SLURM_CONF" > "$D/log/slurmd.out" 2>&1 < /dev/null &
  echo $! > "$D/run/slurmd.fg.pid"
  echo "export SLURM_CONF=$SLURM_CONF" > "$D/env.sh"
  local _
  for _ in $(seq 150); do  # 30 s; it takes about 1 s
    if sinfo -h -o %T 2> /dev/null | grep -qx idle; then
      echo "local-slurm: up in $D (ports $port, $((port + 1))); use it with: source $D/env.sh"
      return 0
    fi
    sleep 0.2
  done
  echo "local-slurm: the node did not become idle within 30 s; logs:" >&2
  tail -n 20 "$D"/log/*.log "$D"/log/*.out >&2 || true
  down
  exit 1
}

down() {
  [ -d "$D" ] || return 0
  if pid_alive "$D/run/slurmctld.fg.pid"; then
    # Cancel what is left and wait until the queue is empty: a job leaves it only when all its
    # processes are gone (SIGTERM, then SIGKILL after KillWait=10 s). Job steps would otherwise
    # outlive slurmd, which does not stop them when it shuts down.
    local jobs
    jobs="$(squeue -h -o %i 2> /dev/null || true)"
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      scancel $jobs 2> /dev/null || true
      local _
      for _ in $(seq 100); do
        [ -z "$(squeue -h -o %i 2> /dev/null)" ] && break
        sleep 0.2
      done
      [ -z "$(squeue -h -o %i 2> /dev/null)" ] ||
        echo "local-slurm: jobs still ending after 20 s: $(squeue -h -o '%i %T' | tr '\n' ' ')" >&2
    fi
    scontrol shutdown > /dev/null 2>&1 || true
  fi
  if ! wait_gone 15 "$D/run/slurmctld.fg.pid" "$D/run/slurmd.fg.pid"; then
    local f
    for f in "$D/run/slurmctld.fg.pid" "$D/run/slurmd.fg.pid"; do
      if pid_alive "$f"; then kill -9 "$(pid_of "$f")" 2> /dev/null || true; fi
    done
  fi
  local munged_pid
  munged_pid="$(pid_of "$D/munge/munged.pid")"  # munged removes the file as it exits
  if [ -n "$munged_pid" ] && kill -0 "$munged_pid" 2> /dev/null; then
    kill "$munged_pid" 2> /dev/null || true
    local _
    for _ in $(seq 25); do
      kill -0 "$munged_pid" 2> /dev/null || break
      sleep 0.2
    done
    kill -9 "$munged_pid" 2> /dev/null || true
  fi
  rm -f "$D/run/slurmctld.fg.pid" "$D/run/slurmd.fg.pid"
}

case "$cmd" in
  up) up ;;
  down) down && echo "local-slurm: stopped (under $D)" ;;
  status)
    sinfo
    squeue
    ;;
  *) usage ;;
esac
