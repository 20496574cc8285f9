#!/bin/sh
# SPDX-License-Identifier: MIT
# asyncd refuses a bad option value before it touches any bus, with a message naming the option
# and what it expects; good values are taken (--version after them exits 0).
asyncd=$1
failed=0

# A command that must fail (with the given status, or any but 0), its stderr saying text.
expect_refusal() {      # what, text, status or "any", command...
        what=$1 text=$2 want=$3
        shift 3
        out=$("$@" 2>&1 >/dev/null)
        rc=$?
        if [ "$rc" -ne 0 ] && { [ "$want" = any ] || [ "$rc" -eq "$want" ]; } &&
           printf '%s' "$out" | grep -qF -- "$text"; then
                echo "ok: $what refused: $out"
        else
                echo "FAIL: $what: exit $rc, \"$out\" does not say \"$text\""
                failed=1
        fi
}

refuse() {      # option=value, text the message must contain
        expect_refusal "$1" "$2" any "$asyncd" "$1"
}

accept() {
        if out=$("$asyncd" "$@" --version 2>&1) && [ -n "$out" ]; then
                echo "ok: $* accepted"
        else
                echo "FAIL: $* not accepted: $out"
                failed=1
        fi
}

refuse --disk-backlog=abc 'Invalid value for --disk-backlog: "abc"'
refuse --disk-backlog=1K 'at least 64K'
refuse --disk-backlog=-2M 'Invalid value for --disk-backlog'
refuse --disk-backlog=2X 'Invalid value for --disk-backlog'
refuse --max-transfers=0 'Invalid value for --max-transfers: "0" (expected 1..100000)'
refuse --disk-threads=65 'Invalid value for --disk-threads'
refuse --keep-finished=soon 'Invalid value for --keep-finished'
refuse --max-finished-tasks=0 'Invalid value for --max-finished-tasks: "0" (expected 1..100000000)'
refuse --log-level=loud 'Invalid log level "loud"'
refuse --max-transfers=+5 'Invalid value for --max-transfers: "+5"'
refuse '--max-transfers= 5' 'Invalid value for --max-transfers: " 5"'
refuse --bus-address=garbage 'Failed to connect to the bus at "garbage"'

# A descriptor limit that leaves no room for a transfer is refused before any bus is touched.
out=$(prlimit --nofile=100:100 "$asyncd" --bus-address=unix:path=/nonexistent 2>&1)
if [ $? -ne 0 ] && printf '%s' "$out" | grep -qF 'RLIMIT_NOFILE is 100: too low for any transfer'; then
        echo "ok: RLIMIT_NOFILE 100 refused: $out"
else
        echo "FAIL: RLIMIT_NOFILE 100: \"$out\""
        failed=1
fi
# No bus to be had: said before anything else happens.
refuse_env() {  # what, text the message must contain, env arguments and asyncd's...
        what=$1 text=$2
        shift 2
        expect_refusal "$what" "$text" 1 env "$@"
}
refuse_env "--user, no session bus" 'Failed to connect to the session bus: neither $DBUS_SESSION_BUS_ADDRESS nor $XDG_RUNTIME_DIR is set' \
        -u DBUS_SESSION_BUS_ADDRESS -u XDG_RUNTIME_DIR -u DBUS_STARTER_BUS_TYPE "$asyncd" --user
refuse_env "--user, no socket" 'Failed to connect to the session bus: No such file or directory' \
        -u DBUS_SESSION_BUS_ADDRESS -u DBUS_STARTER_BUS_TYPE XDG_RUNTIME_DIR=/nonexistent "$asyncd" --user
refuse_env "--system, no socket" 'Failed to connect to the system bus: No such file or directory' \
        -u DBUS_STARTER_BUS_TYPE DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/socket "$asyncd" --system

refuse extra 'Unexpected argument "extra"'
refuse --frobnicate 'unrecognized option'

# --help: exit 0, and every option the man page documents is listed (by its long name).
man=$(dirname "$0")/../man/asyncd.8
if help=$("$asyncd" --help) && printf '%s\n' "$help" | head -1 | grep -q '^Usage: asyncd '; then
        for o in $(sed -n 's/^\.BI\{0,1\} \\-\\-\([a-z\\-]*\).*/\1/p' "$man" | sed 's/\\-/-/g' | sort -u); do
                if printf '%s\n' "$help" | grep -q -- "--$o\b"; then
                        echo "ok: --help lists --$o"
                else
                        echo "FAIL: --help does not list --$o (asyncd.8 does)"
                        failed=1
                fi
        done
else
        echo "FAIL: --help: exit $?, \"$(printf '%s' "$help" | head -1)\""
        failed=1
fi

accept --disk-backlog=64K
accept --disk-backlog=1.5M --disk-threads=1 --max-transfers=10
accept --disk-backlog=1GiB
accept --max-finished-tasks=1 --max-finished-jobs=1
exit $failed
