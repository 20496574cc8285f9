#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Usage: test-bus-config.sh CONFIG [ACTIVATION-FILE...]
#
# Starts a private dbus-daemon with CONFIG (one of the test bus configurations
# generated from test-*-bus.conf.in; its %BUSDIR% and %SERVICEDIR% placeholders
# are replaced here), with the given D-Bus activation files in its service
# directory. Passes if the bus comes up, is still alive after a second, and
# lists the name of every activation file as activatable. dbus-daemon refuses
# to start when an included policy file is malformed or uses an invalid
# element or attribute, so this fails then.

set -eu

if [ $# -lt 1 ]; then
        echo "usage: $0 CONFIG [ACTIVATION-FILE...]" >&2
        exit 2
fi
config=$1
shift

T=$(mktemp -d "${TMPDIR:-/tmp}/asyncd-bus-test.XXXXXX")
pid=
cleanup() {
        if [ -n "$pid" ]; then
                kill "$pid" 2>/dev/null || :
                wait "$pid" 2>/dev/null || :
        fi
        rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
        echo "FAIL: $*"
        if [ -s "$T/stderr" ]; then
                echo "--- dbus-daemon said:"
                cat "$T/stderr"
        fi
        exit 1
}

mkdir "$T/services"
for f in "$@"; do
        cp "$f" "$T/services/"
done
sed -e "s|%BUSDIR%|$T|g" -e "s|%SERVICEDIR%|$T/services|g" "$config" >"$T/bus.conf"

dbus-daemon --config-file="$T/bus.conf" --nofork --nopidfile --print-address=3 \
        3>"$T/address" 2>"$T/stderr" &
pid=$!

# dbus-daemon prints its address once the configuration is loaded and it
# listens; it exits at once when the configuration is bad.
i=0
while [ ! -s "$T/address" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
                rc=0
                wait "$pid" || rc=$?
                pid=
                fail "dbus-daemon exited with status $rc"
        fi
        i=$((i + 1))
        [ "$i" -le 100 ] || fail "dbus-daemon printed no address within 10 s"
        sleep 0.1
done
sleep 1
kill -0 "$pid" 2>/dev/null || { pid=; fail "dbus-daemon died after start-up"; }

address=$(head -n 1 "$T/address")
echo "bus up at $address with $config"

if [ $# -gt 0 ]; then
        names=$(busctl --address="$address" call org.freedesktop.DBus /org/freedesktop/DBus \
                org.freedesktop.DBus ListActivatableNames) || fail "ListActivatableNames failed"
        for f in "$@"; do
                name=$(sed -n 's/^Name=//p' "$f")
                [ -n "$name" ] || fail "$f has no Name="
                case " $names " in
                        *" \"$name\" "*) echo "activatable: $name ($f)" ;;
                        *) fail "$name from $f is not activatable; the bus lists: $names" ;;
                esac
        done
fi

echo "ok"
