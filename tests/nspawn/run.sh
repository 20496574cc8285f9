#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Usage: tests/nspawn/run.sh [--prepare] BUILD_DIR
#
# End-to-end test of asyncd under a real systemd: boots a Debian tree with
# "systemd-nspawn --boot", with the build of BUILD_DIR installed into it, and
# runs tests/nspawn/in-container.sh there as ci-test.service. Its output (one
# "ok ..."/"FAIL ..." line per check, then "N passed, N failed") appears on
# stdout; the exit status is the container's, i.e. 0 only when every check
# passed.
#
# BUILD_DIR must be configured with -Dprefix=/usr (dbus-daemon reads policy
# files only from /usr/share/dbus-1/system.d and /etc/dbus-1/system.d) and be
# built already: it is installed with "meson install --no-rebuild".
#
# The Debian tree (debootstrap --variant=minbase plus the packages below, from
# the mirror apt uses for the host's release) is built once and cached under
# /var/cache/asyncd-nspawn/, keyed by release, architecture and package list.
# Each run boots a throw-away overlay (or, failing that, a copy) of it, so runs
# never change the cache. --prepare only builds the cache and exits.
#
# Needs root, debootstrap and systemd-nspawn (package systemd-container), and
# works without systemd as PID 1 on the host: the container is not registered
# with machined (--register=no --keep-unit), runs in a cgroup of its own that
# is removed afterwards, has a private network (loopback only), and is killed
# after ASYNCD_NSPAWN_TIMEOUT seconds (default 300). Everything but the cache
# is removed at the end.
#
# Environment:
#   ASYNCD_NSPAWN_CACHE    cache directory (default /var/cache/asyncd-nspawn)
#   ASYNCD_NSPAWN_SUITE    Debian release (default: the host's VERSION_CODENAME)
#   ASYNCD_NSPAWN_MIRROR   Debian mirror (default: the one apt uses for SUITE)
#   ASYNCD_NSPAWN_TIMEOUT  seconds before the container is killed (default 300)
#   ASYNCD_NSPAWN_COPY=1   copy the cached tree instead of using an overlay
#   ASYNCD_NSPAWN_KEEP=1   keep the run directory (for debugging)

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)

# The packages of the tree. Changing this list (or RECIPE, for other changes
# to how the tree is made) makes a new cache entry.
PACKAGES=(systemd systemd-sysv dbus libpam-systemd dbus-user-session
          libcurl4 libjson-c5 python3 ca-certificates)
RECIPE=1

say() { printf 'run.sh: %s\n' "$*"; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root"

# Run in a private mount namespace: the overlay mounted below then vanishes
# with this script, whatever happens, and is never visible on the host.
if [ -z "${ASYNCD_NSPAWN_IN_NS:-}" ]; then
        export ASYNCD_NSPAWN_IN_NS=1
        exec unshare --mount --propagation private -- bash "$HERE/run.sh" "$@"
fi

PREPARE_ONLY=0
if [ "${1:-}" = "--prepare" ]; then
        PREPARE_ONLY=1
        shift
fi
if [ $# -ne 1 ] && { [ $PREPARE_ONLY = 0 ] || [ $# -gt 1 ]; }; then
        echo "usage: $0 [--prepare] BUILD_DIR" >&2
        exit 2
fi

for tool in debootstrap systemd-nspawn meson flock timeout; do
        command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done
# --private-network needs CAP_NET_ADMIN to bring up the container's loopback; without it
# (e.g. when this runs in a container itself) nspawn only warns and every check on 127.0.0.1 fails.
capeff=$(awk '$1 == "CapEff:" { print $2 }' /proc/self/status)
[[ $capeff =~ ^[0-9a-f]+$ ]] || die "cannot read the effective capabilities from /proc/self/status"
(( 0x$capeff & (1 << 12) )) ||
        die "no CAP_NET_ADMIN (nested in a container?): the container's loopback could not be set up"

T0=$(date +%s.%N)
elapsed() { awk -v t0="$T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }

# --- the cached tree ----------------------------------------------------------

# shellcheck disable=SC1091
SUITE=${ASYNCD_NSPAWN_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-}")}
[ -n "$SUITE" ] || die "cannot tell the Debian release; set ASYNCD_NSPAWN_SUITE"
ARCH=$(dpkg --print-architecture)
CACHE=${ASYNCD_NSPAWN_CACHE:-/var/cache/asyncd-nspawn}

# The first URI apt uses for "deb" packages of $SUITE (deb822 .sources files
# first, then one-line .list files).
apt_mirror() {
        local f
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -e "$f" ] || continue
                awk -v suite="$SUITE" '
                        function flush() {
                                if (!found && enabled && uris != "" &&
                                    (" " types " ") ~ / deb / && (" " suites " ") ~ (" " suite " ")) {
                                        split(uris, u, " "); print u[1]; found = 1
                                }
                                types = suites = uris = ""; enabled = 1
                        }
                        BEGIN { enabled = 1 }
                        /^[ \t]*#/ { next }
                        /^[ \t]*$/ { flush(); next }
                        { key = tolower($1); val = $0; sub(/^[^:]*:[ \t]*/, "", val) }
                        key == "types:" { types = val }
                        key == "uris:" { uris = val }
                        key == "suites:" { suites = val }
                        key == "enabled:" && tolower(val) == "no" { enabled = 0 }
                        END { flush() }' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                [ -e "$f" ] || continue
                awk -v suite="$SUITE" '
                        $1 == "deb" {
                                i = 2
                                if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
                                if ($(i + 1) == suite) print $i
                        }' "$f"
        done
}

# --- the build ----------------------------------------------------------------

check_build() {
        BUILD=$(cd "$1" && pwd) || die "no build directory $1"
        [ -f "$BUILD/build.ninja" ] || die "$BUILD is not a meson build directory"
        prefix=$(meson introspect --buildoptions "$BUILD" |
                 python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
        [ "$prefix" = /usr ] ||
                die "$BUILD is configured with prefix $prefix; this test needs -Dprefix=/usr (meson configure $BUILD -Dprefix=/usr)"
        local f
        for f in daemon/asyncd cli/asyncctl; do
                [ -x "$BUILD/$f" ] || die "$BUILD/$f is not built (ninja -C $BUILD)"
        done
}

KEY=$(printf '%s\n' "$RECIPE" "$SUITE" "$ARCH" minbase "${PACKAGES[@]}" | sha256sum | cut -c1-16)
TREE=$CACHE/$SUITE-$ARCH-$KEY

prepare_tree() {
        mkdir -p "$CACHE"
        exec 8>"$CACHE/.lock"
        flock 8                         # one debootstrap at a time
        if [ -d "$TREE" ]; then
                say "using cached tree $TREE"
                flock -u 8
                return
        fi
        local mirror=${ASYNCD_NSPAWN_MIRROR:-$(apt_mirror | head -n 1)}
        [ -n "$mirror" ] || die "no apt source for $SUITE found; set ASYNCD_NSPAWN_MIRROR"
        local include
        include=$(IFS=,; echo "${PACKAGES[*]}")
        say "building tree $TREE: debootstrap --variant=minbase $SUITE from $mirror"
        say "  packages: ${PACKAGES[*]}"
        rm -rf --one-file-system "$TREE.tmp" "$TREE.log"
        if ! debootstrap --variant=minbase --include="$include" "$SUITE" "$TREE.tmp" "$mirror" \
                >"$TREE.log" 2>&1; then
                tail -n 30 "$TREE.log" >&2
                rm -rf --one-file-system "$TREE.tmp"
                die "debootstrap failed (log: $TREE.log)"
        fi
        rm -f "$TREE.tmp"/var/cache/apt/archives/*.deb
        printf '%s\n' "suite $SUITE" "arch $ARCH" "mirror $mirror" "packages ${PACKAGES[*]}" \
                "built $(date -u +%FT%TZ)" >"$TREE.info"
        mv "$TREE.tmp" "$TREE"
        flock -u 8
        say "tree built in $(elapsed) s ($(du -sm "$TREE" | cut -f1) MB)"
}

if [ $PREPARE_ONLY = 0 ]; then
        check_build "$1"
fi
prepare_tree
if [ $PREPARE_ONLY = 1 ]; then
        exit 0
fi

# --- this run's instance ------------------------------------------------------

RUN=$(mktemp -d "${TMPDIR:-/var/tmp}/asyncd-nspawn.XXXXXX")
ROOT=$RUN/root
CGROUPS=()

# shellcheck disable=SC2317  # called from traps
cleanup() {
        local rc=$? d
        for d in "${CGROUPS[@]}"; do
                # Nothing should be left after nspawn exits; kill stragglers of
                # this container only, then remove the whole subtree.
                for _ in 1 2 3 4 5 6 7 8 9 10; do
                        # shellcheck disable=SC2038  # xargs reads pids, not file names
                        find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || :
                        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || :
                        [ -d "$d" ] || break
                        sleep 0.2
                done
                [ ! -d "$d" ] || echo "run.sh: warning: could not remove cgroup $d" >&2
        done
        if mountpoint -q "$ROOT" 2>/dev/null; then
                umount "$ROOT" 2>/dev/null || umount -l "$ROOT"
        fi
        if [ "${ASYNCD_NSPAWN_KEEP:-0}" = 1 ]; then
                say "kept $RUN"
        else
                rm -rf --one-file-system "$RUN"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$ROOT" "$RUN/upper" "$RUN/work"
if [ "${ASYNCD_NSPAWN_COPY:-0}" != 1 ] &&
   mount -t overlay overlay -o "lowerdir=$TREE,upperdir=$RUN/upper,workdir=$RUN/work" "$ROOT" 2>/dev/null; then
        say "instance: overlay on the cached tree at $ROOT"
else
        cp -a "$TREE/." "$ROOT/"
        say "instance: copy of the cached tree at $ROOT"
fi

DESTDIR=$ROOT meson install -C "$BUILD" --no-rebuild --quiet >"$RUN/install.log" 2>&1 || {
        cat "$RUN/install.log" >&2
        die "meson install failed"
}
say "installed $BUILD into the instance"

mkdir -p "$ROOT/ci/servers"
install -m 0755 "$HERE/in-container.sh" "$ROOT/ci/in-container.sh"
install -m 0755 "$SRC/tests/servers/fault-server.py" "$ROOT/ci/servers/fault-server.py"
install -D -m 0755 "$BUILD/tests/refuse-flink" "$ROOT/ci/bin/refuse-flink"
cp -a "$SRC/tests/fixtures" "$ROOT/ci/fixtures"

# The test runs as a oneshot unit once the boot is done; its end ends the
# container (SuccessAction=/FailureAction= must be in [Unit]) with its exit
# status. Output goes to the journal and the console, i.e. to our stdout.
cat >"$ROOT/etc/systemd/system/ci-test.service" <<'EOF'
[Unit]
Description=asyncd integration test
After=multi-user.target dbus.service
Requires=dbus.service
SuccessAction=exit
FailureAction=exit

[Service]
Type=oneshot
ExecStart=/ci/in-container.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
EOF
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/ci-test.service "$ROOT/etc/systemd/system/multi-user.target.wants/ci-test.service"
ln -sf /dev/null "$ROOT/etc/systemd/system/console-getty.service"

# --- a cgroup of our own ------------------------------------------------------

# With --keep-unit, nspawn puts the container below its own cgroup (payload/,
# supervisor/), and without systemd on the host nobody would remove those. So
# nspawn runs in a fresh child of our cgroup, in the named systemd hierarchy
# and in the unified one, and the subtree is removed afterwards.
CG_NAME=asyncd-nspawn-$$
while IFS=: read -r id ctrl path; do
        mnt=
        if [ "$ctrl" = name=systemd ]; then
                mnt=$(awk '$9 == "cgroup" && $NF ~ /(^|,)name=systemd(,|$)/ { print $5; exit }' /proc/self/mountinfo)
        elif [ "$id" = 0 ] && [ -z "$ctrl" ]; then
                mnt=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
        fi
        if [ -z "$mnt" ] || [ ! -w "$mnt${path%/}/cgroup.procs" ]; then
                continue
        fi
        d=$mnt${path%/}/$CG_NAME
        mkdir "$d"
        CGROUPS+=("$d")
done </proc/self/cgroup
[ ${#CGROUPS[@]} -gt 0 ] || die "found no writable cgroup hierarchy"
say "container cgroup: ${CGROUPS[*]}"

# --- boot ---------------------------------------------------------------------

TIMEOUT=${ASYNCD_NSPAWN_TIMEOUT:-300}
say "booting the container (timeout ${TIMEOUT} s) after $(elapsed) s"
T_BOOT=$(date +%s.%N)
# In the background, so that a signal to this script is handled at once: the
# handler asks the container to shut down (SIGTERM to timeout, which passes it
# on to nspawn, which powers the container off), and cleanup kills whatever is
# left in the container's cgroup.
(
        set +e
        (
                for d in "${CGROUPS[@]}"; do
                        echo "$BASHPID" >"$d/cgroup.procs"
                done
                echo "$BASHPID" >"$RUN/timeout.pid"
                exec timeout -k 10 "$TIMEOUT" systemd-nspawn --quiet --directory="$ROOT" \
                        --machine="asyncd-ci-$$" --register=no --keep-unit \
                        --private-network --link-journal=no --console=read-only \
                        --boot -- systemd.show_status=no systemd.log_color=no
        ) 2>&1 | tee "$RUN/console.log"
        exit "${PIPESTATUS[0]}"
) &
BOOT_PID=$!
# shellcheck disable=SC2317  # called from traps
on_signal() {
        local pid
        say "interrupted, stopping the container"
        pid=$(cat "$RUN/timeout.pid" 2>/dev/null || :)
        if [ -n "$pid" ]; then
                kill -TERM "$pid" 2>/dev/null || :
                for _ in $(seq 50); do
                        kill -0 "$BOOT_PID" 2>/dev/null || break
                        sleep 0.2
                done
        fi
        exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
rc=0
wait "$BOOT_PID" || rc=$?
trap 'exit 130' INT
trap 'exit 143' TERM
boot_time=$(awk -v t0="$T_BOOT" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }')

# The container's exit status is the test's. The runner itself fails the run
# when the container was killed, printed no summary, or its exit status and
# summary disagree; the last line counts such a failure as one more.
summary=$(grep -aoE '[0-9]+ passed, [0-9]+ failed' "$RUN/console.log" | tail -n 1 || :)
passed=0
failed=0
if [ -n "$summary" ]; then
        passed=${summary%% passed*}
        failed=${summary##*, }
        failed=${failed%% failed}
fi
if [ $rc = 124 ] || [ $rc = 137 ]; then
        say "FAIL: the container did not finish within $TIMEOUT s"
elif [ -z "$summary" ]; then
        say "FAIL: the test printed no summary (container exit status $rc)"
        [ $rc != 0 ] || rc=1
elif [ "$failed" != 0 ] && [ $rc = 0 ]; then
        say "FAIL: the test reported $failed failed checks but the container exited 0"
        rc=1
fi
if [ $rc != 0 ] && [ "$failed" = 0 ]; then
        failed=1
fi
say "container ran ${boot_time} s, exit status $rc; total $(elapsed) s"
# The last line, plain, for CI.
echo "$passed passed, $failed failed"
exit $rc
