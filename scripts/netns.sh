#!/usr/bin/env bash
# Test hosts on this machine only: network namespaces on a bridge, so that a test or the demo can
# connect to MariaDB *from* a bastion's private IP and MariaDB sees that IP (an account bound to
# one address is refused from another, for real).
#
#   scripts/netns.sh bridge          # ppbr0 = 10.200.0.1/16 on the host (idempotent)
#   scripts/netns.sh add NAME IP     # namespace NAME holding IP/16, wired to the bridge
#   scripts/netns.sh exec NAME CMD.. # run CMD inside NAME
#   scripts/netns.sh del NAME        # remove it (idempotent)
#
# Addresses stay inside 10.200.0.0/16 on this machine; nothing is routed anywhere else.
set -euo pipefail

BRIDGE=ppbr0
HOST_IP=10.200.0.1
PREFIX=16

bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  # Not `ip ... | grep -q`: under pipefail, grep exiting early makes `ip` die of SIGPIPE.
  local addrs; addrs=$(ip -4 addr show dev "$BRIDGE")
  [[ $addrs == *"inet $HOST_IP/"* ]] || ip addr add "$HOST_IP/$PREFIX" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# Interface names are limited to 15 characters: derive short, stable ones from the namespace name.
veth_names() {
  local h; h=$(printf '%s' "$1" | sha1sum | cut -c1-8)
  echo "pph$h ppn$h"
}

add() {
  local name=$1 ip=$2
  case "$ip" in 10.200.*) ;; *) echo "netns.sh: $ip is outside 10.200.0.0/16" >&2; exit 64 ;; esac
  [ "$ip" != "$HOST_IP" ] || { echo "netns.sh: $HOST_IP is the host's address" >&2; exit 64; }
  bridge
  del "$name" 2>/dev/null || true
  read -r host_end ns_end < <(veth_names "$name")
  ip netns add "$name"
  ip link add "$host_end" type veth peer name "$ns_end"
  ip link set "$ns_end" netns "$name"
  ip link set "$host_end" master "$BRIDGE" up
  ip -n "$name" addr add "$ip/$PREFIX" dev "$ns_end"
  ip -n "$name" link set "$ns_end" up
  ip -n "$name" link set lo up
}

del() {
  local name=$1
  read -r host_end _ < <(veth_names "$name")
  ip link del "$host_end" 2>/dev/null || true
  ip netns del "$name" 2>/dev/null || true
}

case "${1:-}" in
  bridge) bridge ;;
  add) [ $# -eq 3 ] || { echo "usage: $0 add NAME IP" >&2; exit 64; }; add "$2" "$3" ;;
  exec) [ $# -ge 3 ] || { echo "usage: $0 exec NAME CMD..." >&2; exit 64; }; name=$2; shift 2; exec ip netns exec "$name" "$@" ;;
  del) [ $# -eq 2 ] || { echo "usage: $0 del NAME" >&2; exit 64; }; del "$2" ;;
  *) echo "usage: $0 bridge | add NAME IP | exec NAME CMD... | del NAME" >&2; exit 64 ;;
esac
