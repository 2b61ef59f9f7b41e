#!/usr/bin/env bash
# A real single-node Slurm on 127.0.0.1 for testing job arrays (not a mock): Debian's slurm-wlm
# and munge, one controller and one compute node on this machine. Needs root (apt, daemons).
#   ci/slurm/local-cluster.sh start    # install if missing, configure, start munged/slurmctld/slurmd
#   ci/slurm/local-cluster.sh stop     # stops only the daemons this script started (pid list)
# A slurmctld or slurmd that this script did not start is never stopped: start refuses to run
# beside it. A munged already running is used as it is.
set -euo pipefail
action="${1:-start}"
state=/var/lib/mmsr-slurm
conf=/etc/slurm/slurm.conf
started="$state/started.pids"   # "name pid" per daemon this script started

stop() {
  [ -f "$started" ] || return 0
  while read -r name pid; do
    # Only a live process that still has the recorded name (pids are reused).
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
      kill "$pid" 2>/dev/null || true
    fi
  done < "$started"
  rm -f "$started"
}

# Records a daemon's pid from its pid file (waits briefly for the daemon to write it).
record() {
  local name="$1" pidfile="$2"
  for _ in $(seq 1 50); do
    if [ -s "$pidfile" ]; then echo "$name $(cat "$pidfile")" >> "$started"; return 0; fi
    sleep 0.1
  done
  echo "note: $name wrote no pid file $pidfile; stop will not know it" >&2
}

if [ "$action" = stop ]; then stop; exit 0; fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
fi
stop
mkdir -p "$state"
for daemon in slurmctld slurmd; do
  if pgrep -r S,R,D -x "$daemon" >/dev/null; then
    echo "a $daemon not started by this script is running (pid $(pgrep -r S,R,D -x "$daemon" | tr '\n' ' ')); stop it first or use that cluster" >&2
    exit 1
  fi
done
host="$(hostname -s)"
cpus="$(nproc)"
mem_mb="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"
mkdir -p /etc/slurm "$state"/{ctld,d} /var/log/slurm /run/munge /etc/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
cat > "$conf" <<CONF
ClusterName=mmsr-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MaxArraySize=10000
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# cgroup support is not needed with the plugins above; an empty file keeps slurmd quiet.
: > /etc/slurm/cgroup.conf
if ! pgrep -r S,R,D -x munged >/dev/null; then
  su -s /bin/sh munge -c "munged --force" 2>/dev/null || munged --force
  record munged /run/munge/munged.pid
fi
slurmctld
record slurmctld "$state/slurmctld.pid"
slurmd
record slurmd "$state/slurmd.pid"
for _ in $(seq 1 30); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed'; then
    echo "slurm up: $(sinfo -h -o '%P %D %T %c')"
    exit 0
  fi
  sleep 1
done
echo "slurm did not come up; see /var/log/slurm/" >&2
tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
