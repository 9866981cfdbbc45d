#!/usr/bin/env bash
# Drives python3-openstackclient (the real `openstack` CLI) against
# `ostask sim` and fails on the first error. Used by CI and as a fidelity
# check of cloudsim: if a real client cannot use it, neither can users.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v openstack >/dev/null || { echo "openstack CLI not found: apt-get install python3-openstackclient" >&2; exit 1; }

work=$(mktemp -d)
bin="$work/ostask"
go build -o "$bin" ./cmd/ostask
port=${OSC_SIM_PORT:-$((20000 + RANDOM % 20000))}
"$bin" sim --listen "127.0.0.1:$port" --timing fast --clouds-yaml "$work/clouds.yaml" >"$work/sim.log" 2>&1 &
sim_pid=$!
cleanup() { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Say what failed: a bare exit under set -e leaves CI's log silent.
trap 'echo "osc-against-sim: failed at line $LINENO: $BASH_COMMAND" >&2; echo "--- ostask sim log:" >&2; cat "$work/sim.log" >&2' ERR

ready=
for _ in $(seq 300); do
  if [ -s "$work/clouds.yaml" ] && grep -q listening "$work/sim.log"; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || { echo "ostask sim did not start within 30 s:" >&2; cat "$work/sim.log" >&2; exit 1; }
export OS_CLIENT_CONFIG_FILE="$work/clouds.yaml" OS_CLOUD=ostask-sim
# Like the openstack CLI users of real clouds do: --nic none needs >= 2.37.
export OS_COMPUTE_API_VERSION=2.latest
run() { echo "+ openstack $*"; timeout 60 openstack "$@"; }

# awk, not head: head would close the pipe early and pipefail would fail on SIGPIPE.
image=$(timeout 60 openstack image list -f value -c ID | awk "NR == 1")
[ -n "$image" ] || { echo "no image listed" >&2; exit 1; }
# flavor list reads each flavor's os-extra_specs at every microversion.
run flavor list
run flavor list --long
OS_COMPUTE_API_VERSION=2.1 run flavor list --long
run flavor show m1.medium
run server create --wait --nic none --flavor m1.tiny --image "$image" osc-vm
run server list
run server event list osc-vm
run volume create --size 1 osc-vol
for _ in $(seq 100); do
  st=$(timeout 60 openstack volume show osc-vol -f value -c status)
  [ "$st" = available ] && break
  sleep 0.2
done
[ "$st" = available ] || { echo "volume stuck in $st" >&2; exit 1; }
run server add volume osc-vm osc-vol
for _ in $(seq 100); do
  st=$(timeout 60 openstack volume show osc-vol -f value -c status)
  [ "$st" = in-use ] && break
  sleep 0.2
done
[ "$st" = in-use ] || { echo "volume not attached: $st" >&2; exit 1; }
run server image create --wait --name osc-snap osc-vm
run image show osc-snap -f value -c status
run server remove volume osc-vm osc-vol
run server delete --wait osc-vm
run server list
echo "openstackclient against ostask sim: OK"
