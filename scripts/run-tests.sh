#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, builds, runs every meson test in a
# normal and in an ASan+UBSan build, the threaded parts in a TSan build, the engine tests, the daemon and asyncctl under valgrind, and the systemd test in a
# container; ends with one "N passed, N failed" line.
#   scripts/run-tests.sh            everything
#   ASYNCD_SKIP_NSPAWN=1 ...        skip the systemd-nspawn test (it needs root and ~1 min)
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD

passed=0
failed=0
failures=()

count_meson() {         # build dir
        local counts
        # Every test the build defines must have a result: a run that died early counts nothing.
        counts=$(python3 - "$1/meson-logs/testlog.json" "$(meson test -C "$1" --list 2>/dev/null | grep -c " / ")" <<'PY'
import json, os, sys
ok = bad = 0
results = [json.loads(line) for line in open(sys.argv[1])] if os.path.exists(sys.argv[1]) else []
for r in results:
    if r["result"] in ("OK", "EXPECTEDFAIL"):
        ok += 1
    else:
        # A skip fails too: this script installed everything every test needs and runs as root.
        bad += 1
        print(r["name"], r["result"], file=sys.stderr)
missing = int(sys.argv[2]) - len(results)
if missing > 0 or not results:
    print(f"{max(missing, 1)} meson test(s) without a result", file=sys.stderr)
    bad += max(missing, 1)
print(ok, bad)
PY
)
        passed=$((passed + ${counts% *}))
        failed=$((failed + ${counts#* }))
        [ "${counts#* }" = 0 ] || failures+=("meson tests in $1")
}

# A build's whole meson suite: one line per test, and the whole output of each test that did not
# pass (later meson runs in the same build directory overwrite its logs, and CI keeps only this).
meson_suite() {         # build dir, label, meson test options...
        local dir=$1 label=$2
        shift 2
        rm -f "$dir/meson-logs/testlog.json"
        meson test -C "$dir" "$@" >/dev/null 2>&1
        count_meson "$dir"
        [ -f "$dir/meson-logs/testlog.json" ] && python3 - "$dir/meson-logs/testlog.json" "$label" <<'PY'
import json, sys
results = [json.loads(line) for line in open(sys.argv[1])]
for r in results:
    print(f'{r["result"]:>8} {r["duration"]:7.2f}s  {r["name"]}{sys.argv[2]}')
for r in results:
    if r["result"] not in ("OK", "EXPECTEDFAIL"):
        print(f'--- output of {r["name"]}{sys.argv[2]} ({r["result"]}, exit status {r["returncode"]}):')
        print(r.get("stdout") or "(none)")
        print(f'--- end of {r["name"]}{sys.argv[2]}')
PY
}

step() {                # name command...
        local name=$1
        shift
        echo "=== $name"
        if "$@"; then
                passed=$((passed + 1))
        else
                failed=$((failed + 1))
                failures+=("$name")
        fi
}

echo "=== installing dependencies"
scripts/install-deps.sh || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }

build() {               # dir, meson options...
        local dir=$1
        shift
        [ -d "$dir" ] || meson setup "$dir" "$@" >/dev/null || return 1
        ninja -C "$dir" >/dev/null || ninja -C "$dir"
}

# Every test keeps its temporary files under TMPDIR, which the last step checks is empty again.
# 0755: the system-bus test's unprivileged daemon reaches its directories through it.
TMPDIR=$(mktemp -d /tmp/asyncd-tests.XXXXXX) && chmod 755 "$TMPDIR" && export TMPDIR

# Plain build and tests.
if step "build" build build -Dprefix=/usr; then
        meson_suite build "" --num-processes 2
        step "the README's main job (scripts/demo.sh)" tests/test-demo.sh
fi

# Sanitizers: the same suite against an ASan+UBSan build.
if step "build (ASan+UBSan)" build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug; then
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                meson_suite build-asan " (asan)" --num-processes 2 --timeout-multiplier 3
fi

# valgrind: the engine tests against the real servers.
fixtures=$top/tests/fixtures
servers=(--nginx "$fixtures" --fault "PLAIN:$fixtures" --fault "DELAY:$fixtures --delay 0.2"
         --fault "ERROR:$fixtures --error-rate 0.25 --seed 7")
# valgrind: the daemon itself during the D-Bus tests (any error or leak makes it exit 99).
valgrind="valgrind -q --vgdb=no --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect"
step "valgrind asyncd (D-Bus tests)" env ASYNCD_TEST_WRAPPER="$valgrind" meson test -C build --timeout-multiplier 3 \
        dbus-flags-gdbus dbus-cancel-and-errors dbus-system-bus-policy dbus-disk-full dbus-filesystems
# valgrind: the daemon through a shorter endurance run (60 rounds, about 800 jobs, ~45 s): leaks and memory errors
# that only show after many jobs. The plain and ASan runs above ran it at full scale.
step "valgrind asyncd (soak)" env ASYNCD_TEST_WRAPPER="$valgrind" ASYNCD_SOAK_ROUNDS=60 meson test -C build \
        --timeout-multiplier 3 dbus-soak
# valgrind: asyncctl in every run of its CLI tests (the races test sends signals by timing: not there).
step "valgrind asyncctl (CLI tests)" env ASYNCCTL_TEST_WRAPPER="$valgrind" meson test -C build --timeout-multiplier 3 \
        cli-asyncctl

for t in test-engine-flags test-engine-cancel test-engine-faults; do
        step "valgrind $t" env ASYNCD_FIXTURES="$fixtures" python3 tests/servers/with-servers.py "${servers[@]}" -- \
                $valgrind build/daemon/$t
done
for t in test-file-writer test-disk-pool; do
        step "valgrind $t" $valgrind build/daemon/$t
done

# ThreadSanitizer: the disk pool's workers are the only threads. The pool and writer unit tests,
# the engine tests, and the daemon through two D-Bus tests (about 1 min with the build). setarch -R:
# gcc 12's TSan refuses some kernels' randomized memory layout ("unexpected memory mapping").
tsan="env TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$top/tests/tsan.supp setarch $(uname -m) -R"
if step "build (TSan)" build build-tsan -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug; then
        step "TSan: disk-pool, file-writer, engine and D-Bus tests" $tsan meson test -C build-tsan \
                --print-errorlogs --num-processes 2 --timeout-multiplier 3 disk-pool file-writer \
                engine-flags engine-cancel engine-faults dbus-flags-gdbus dbus-cancel-and-errors
fi

if [ -x tests/nspawn/run.sh ] && [ -z "${ASYNCD_SKIP_NSPAWN:-}" ]; then
        step "systemd in a container (nspawn)" tests/nspawn/run.sh build
fi

no_leftovers() {
        local left
        left=$(find "$TMPDIR" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort)
        [ -z "$left" ] && return 0
        echo "the tests left these in TMPDIR ($TMPDIR):"
        echo "$left" | sed 's/^/  /'
        return 1
}
step "tests left no temporary files" no_leftovers
rm -rf "$TMPDIR"

echo
for f in "${failures[@]}"; do
        echo "FAILED: $f"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
