#!/usr/bin/env bash
# Installs the system packages the test suite runs for real: Prometheus (with promtool),
# Alertmanager (with amtool), Chromium, and npm (the page accessibility test installs axe-core
# with it). Fails loudly when it cannot.
set -euo pipefail

needed=()
command -v prometheus >/dev/null || needed+=(prometheus)
command -v promtool >/dev/null || needed+=(prometheus)
command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || needed+=(prometheus-alertmanager)
command -v amtool >/dev/null || needed+=(prometheus-alertmanager)
command -v chromium >/dev/null || needed+=(chromium)
command -v npm >/dev/null || needed+=(npm)

if [ ${#needed[@]} -eq 0 ]; then
  exit 0
fi
packages=$(printf '%s\n' "${needed[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: missing $packages; install them (Debian: apt-get install -y $packages)" >&2
  exit 1
fi
echo "system-deps: installing $packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $packages >/dev/null
