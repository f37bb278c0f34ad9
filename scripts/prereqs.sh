#!/usr/bin/env bash
# Installs the host tools Weft's local mode and tests use, where they are missing:
# iproute2 (ip netns, veth, bridge), iptables (nft and legacy), util-linux (setpriv),
# curl and procps for poking at pods by hand, kubectl (kubernetes-client) for manifest checks. Debian/Ubuntu (apt-get) only; elsewhere it
# says what is missing.
set -euo pipefail

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables-nft >/dev/null 2>&1 || need+=(iptables)
command -v iptables-legacy >/dev/null 2>&1 || need+=(iptables)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v ps >/dev/null 2>&1 || need+=(procps)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# kubectl reads deploy/ in the manifest tests.
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "weft: missing packages: ${need[*]}; run this as root (or install them) first" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "weft: missing packages: ${need[*]}; install them with your package manager" >&2
  exit 1
fi
echo "weft: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
