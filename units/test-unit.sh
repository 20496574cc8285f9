#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Usage: test-unit.sh verify   system|user UNIT-FILE
#        test-unit.sh security system|user UNIT-FILE THRESHOLD
#
# Lints a configured unit file with systemd-analyze, on a copy in a scratch
# directory (same file name) whose ExecStart= runs /bin/true: "verify" checks
# that the executable exists, and the daemon may not be built or installed.
#
# verify   "systemd-analyze verify --man=no"; fails on a non-zero exit status
#          and also on any message about the unit itself (unknown keys and
#          unparsable values are only warnings to systemd-analyze).
# security "systemd-analyze security --offline=true --threshold=THRESHOLD";
#          THRESHOLD is exposure x 10 (20 = 2.0). Prints the table and score.
#
# The user manager variant runs with an XDG_RUNTIME_DIR of its own.

set -eu

if [ $# -lt 3 ]; then
        echo "usage: $0 verify|security system|user UNIT-FILE [THRESHOLD]" >&2
        exit 2
fi
mode=$1
scope=$2
unit=$3

T=$(mktemp -d "${TMPDIR:-/tmp}/asyncd-unit-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

name=$(basename "$unit")
copy=$T/$name
sed -e 's|^ExecStart=[^ ]*|ExecStart=/bin/true|' "$unit" >"$copy"

case "$scope" in
        system) scope_opt=--system ;;
        user)
                scope_opt=--user
                mkdir -m 0700 "$T/runtime"
                XDG_RUNTIME_DIR=$T/runtime
                export XDG_RUNTIME_DIR
                ;;
        *) echo "unknown scope: $scope" >&2; exit 2 ;;
esac

case "$mode" in
verify)
        rc=0
        systemd-analyze "$scope_opt" verify --man=no "$copy" >"$T/out" 2>&1 || rc=$?
        cat "$T/out"
        if [ "$rc" -ne 0 ]; then
                echo "FAIL: systemd-analyze verify exited with status $rc"
                exit 1
        fi
        if grep -F -e "$copy" -e "$name:" "$T/out" >/dev/null; then
                echo "FAIL: systemd-analyze verify complained about $name"
                exit 1
        fi
        echo "ok: $unit ($scope) verified"
        ;;
security)
        if [ $# -lt 4 ]; then
                echo "security needs a THRESHOLD" >&2
                exit 2
        fi
        threshold=$4
        rc=0
        systemd-analyze "$scope_opt" security --no-pager --offline=true \
                --threshold="$threshold" "$copy" || rc=$?
        if [ "$rc" -ne 0 ]; then
                echo "FAIL: exposure of $name is above the threshold $threshold (status $rc)"
                exit 1
        fi
        echo "ok: exposure of $name is within the threshold $threshold"
        ;;
*)
        echo "unknown mode: $mode" >&2
        exit 2
        ;;
esac
