#!/usr/bin/env bash
# Installs everything asyncd needs to build, test and demo on Debian 12, from Debian's packages.
#   scripts/install-deps.sh          build + test + demo dependencies
#   scripts/install-deps.sh --bench  also the benchmark peers (aria2, wget2, aiohttp, wrk, hyperfine)
#   scripts/install-deps.sh --fuzz   also clang and its libFuzzer runtime, for scripts/fuzz.sh
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(
        build-essential meson ninja-build pkg-config
        libsystemd-dev libcurl4-openssl-dev libjson-c-dev libcmocka-dev
        systemd dbus dbus-bin libglib2.0-bin python3 python3-gi
        nginx-light curl util-linux iproute2 procps bash-completion locales
        valgrind gdb mandoc systemd-container debootstrap openssl ca-certificates
        dosfstools fusefat
)
case "${1:-}" in
--bench) packages+=(aria2 wget2 python3-aiohttp wrk hyperfine linux-perf time) ;;
--fuzz) packages+=(clang libclang-rt-14-dev) ;;
esac

missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx from Debian starts itself on port 80 when installed; our tests run their own instances.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now nginx >/dev/null 2>&1 || true
elif [ -s /run/nginx.pid ]; then
        # Only the packaged instance (its pid file); nginx started by tests or benchmarks is left alone.
        kill "$(cat /run/nginx.pid)" 2>/dev/null || true
fi
