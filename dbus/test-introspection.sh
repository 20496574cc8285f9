#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Usage: test-introspection.sh ASYNCD PYTHON CHECKER SESSION-BUS-CONFIG POLICY INTERFACE.xml...
#
# The contract test between the interface files and the daemon: starts a
# private session bus (from the test session bus configuration) and the built
# daemon on it, submits one job (to a closed local port, so it ends at once),
# fetches the introspection data of /io/asyncd1 and /io/asyncd1/job/1, and has
# CHECKER (check-interfaces.py) compare it with the interface files: every
# method, signal and property must be the same, and nothing undocumented may
# be there. Skips (exit status 77) without gdbus, which passes the directory
# file descriptor (busctl can do so only from systemd 257 on).

set -eu

if [ $# -lt 6 ]; then
        echo "usage: $0 ASYNCD PYTHON CHECKER SESSION-BUS-CONFIG POLICY INTERFACE.xml..." >&2
        exit 2
fi
asyncd=$1
python=$2
checker=$3
config=$4
shift 4

if ! command -v gdbus >/dev/null 2>&1; then
        echo "gdbus not found, skipping"
        exit 77
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/asyncd-introspection-test.XXXXXX")
bus_pid=
daemon_pid=
cleanup() {
        for p in $daemon_pid $bus_pid; do
                kill "$p" 2>/dev/null || :
                wait "$p" 2>/dev/null || :
        done
        rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
        echo "FAIL: $*"
        for f in bus.stderr asyncd.stderr; do
                if [ -s "$T/$f" ]; then
                        echo "--- $f:"
                        cat "$T/$f"
                fi
        done
        exit 1
}

mkdir "$T/services" "$T/dl"
sed -e "s|%SERVICEDIR%|$T/services|g" "$config" >"$T/bus.conf"

dbus-daemon --config-file="$T/bus.conf" --nofork --nopidfile --print-address=3 \
        3>"$T/address" 2>"$T/bus.stderr" &
bus_pid=$!
i=0
while [ ! -s "$T/address" ]; do
        kill -0 "$bus_pid" 2>/dev/null || fail "dbus-daemon exited"
        i=$((i + 1))
        [ "$i" -le 100 ] || fail "dbus-daemon printed no address within 10 s"
        sleep 0.1
done
address=$(head -n 1 "$T/address")

"$asyncd" --bus-address="$address" --log-level=debug 2>"$T/asyncd.stderr" &
daemon_pid=$!
i=0
until busctl --address="$address" call org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus NameHasOwner s io.asyncd1 2>/dev/null | grep -q true; do
        kill -0 "$daemon_pid" 2>/dev/null || fail "asyncd exited"
        i=$((i + 1))
        [ "$i" -le 100 ] || fail "asyncd did not take the name io.asyncd1 within 10 s"
        sleep 0.1
done

gdbus call --address "$address" -d io.asyncd1 -o /io/asyncd1 \
        -m io.asyncd1.Manager.SubmitJob \
        "[('http://127.0.0.1:9/introspection-test', '')]" 'handle 3' '{}' 0 \
        3<"$T/dl" >"$T/submit" || fail "SubmitJob failed"
echo "SubmitJob: $(cat "$T/submit")"
job=$(sed -n "s|.*objectpath '\([^']*\)'.*|\1|p" "$T/submit")
[ -n "$job" ] || fail "no job path in the reply"

gdbus introspect --address "$address" -d io.asyncd1 -o /io/asyncd1 --xml \
        >"$T/manager.xml" || fail "introspecting /io/asyncd1 failed"
gdbus introspect --address "$address" -d io.asyncd1 -o "$job" --xml \
        >"$T/job.xml" || fail "introspecting $job failed"

"$python" "$checker" "$@" --live "$T/manager.xml" "$T/job.xml" || fail "the daemon does not match the interface files"
