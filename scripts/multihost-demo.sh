#!/usr/bin/env bash
# Simulates the nodes of topologies/multihost.yaml on this machine: each node a network namespace
# (mh-n1, mh-n2, mh-n3) with an underlay interface u0 (192.0.2.N/24) on a bridge in a fourth
# namespace (mh-u). Then applies the file on every node (--node, --fabric-netns), verifies every
# row from the host, and — with `down` — destroys every node's part and removes the namespaces.
#   scripts/multihost-demo.sh [up|verify|down]     (default: up, verify, down)
set -euo pipefail
cd "$(dirname "$0")/.."
quiver=${QUIVER:-.build/debug/quiver}
file=topologies/multihost.yaml
nodes=(n1 n2 n3)
up() {
  ip netns add mh-u
  ip -n mh-u link add ub type bridge
  ip -n mh-u link set ub up
  for i in 1 2 3; do
    ip netns add mh-n$i
    ip link add u0 netns mh-n$i type veth peer name p$i netns mh-u
    ip -n mh-u link set p$i master ub up
    ip -n mh-n$i addr add 192.0.2.$i/24 dev u0
    ip -n mh-n$i link set u0 up
    ip -n mh-n$i link set lo up
  done
  for i in 1 2 3; do "$quiver" apply "$file" --node n$i --fabric-netns mh-n$i; done
}
verify() { "$quiver" verify "$file"; }
down() {
  for i in 1 2 3; do "$quiver" destroy "$file" --node n$i --fabric-netns mh-n$i || true; done
  for n in mh-n1 mh-n2 mh-n3 mh-u; do ip netns del $n 2>/dev/null || true; done
}
case "${1:-all}" in
  up) up ;;
  verify) verify ;;
  down) down ;;
  all) up; trap down EXIT; verify ;;
esac
