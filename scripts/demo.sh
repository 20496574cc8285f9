#!/usr/bin/env bash
# The main job, end to end: installs dependencies, builds, starts asyncd on a private session bus,
# serves the flags from a local nginx, and downloads all 194 flags plus a few codes that do not
# exist with asyncctl, showing results as they complete and the seed's summary.
#   scripts/demo.sh [-v] [-m CONCURRENCY] [-o DIR]     (extra options go to "asyncctl submit";
#   without -o the flags go to $TMPDIR/asyncd-demo, emptied first)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${ASYNCD_DEMO_INNER:-}" ]; then
        scripts/install-deps.sh
        [ -d build ] || meson setup build -Dprefix=/usr >/dev/null
        ninja -C build >/dev/null
        # A bus of our own, so the demo needs no running system or session bus.
        export ASYNCD_DEMO_INNER=1
        exec dbus-run-session -- python3 tests/servers/with-servers.py --nginx "$PWD/tests/fixtures" -- "$0" "$@"
fi

# -o/--output-dir picks the output directory, the rest goes to asyncctl. Only the default one is
# emptied first: a directory of the user's keeps its files (existing names then fail, as they
# should, unless --overwrite).
side=${TMPDIR:-/tmp}/asyncd-demo        # + .log (the daemon's) and .urls
out=$side
args=()
while [ $# -gt 0 ]; do
        case $1 in
        -o | --output-dir) out=${2:?"$1 needs a directory"}; shift 2 ;;
        -o?*) out=${1#-o}; shift ;;
        --output-dir=*) out=${1#--output-dir=}; shift ;;
        *) args+=("$1"); shift ;;
        esac
done
[ "$out" != "$side" ] || rm -rf "$out"
mkdir -p "$out"
build/daemon/asyncd --user 2>"$side.log" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do
        busctl --user status io.asyncd1 >/dev/null 2>&1 && break
        sleep 0.05
done

urls=$side.urls
{
        tr 'A-Z' 'a-z' < tests/fixtures/flags/country_codes.txt | tr ' ' '\n' | grep . |
                sed "s|.*|$ASYNCD_TEST_NGINX_URL/flags/&/&.gif|"
        for cc in xx qq zz; do echo "$ASYNCD_TEST_NGINX_URL/flags/$cc/$cc.gif"; done
} > "$urls"

echo "LOCAL site: $ASYNCD_TEST_NGINX_URL/flags"
echo "Searching for $(wc -l < "$urls") flags: from AD to ZZ"
rc=0
build/cli/asyncctl --user submit --name flags -m 20 -o "$out" -i "$urls" ${args[@]+"${args[@]}"} || rc=$?
echo
build/cli/asyncctl --user status
echo
echo "asyncctl exit code: $rc (3 = finished with not-found or failed tasks); files in $out: $(ls "$out" | wc -l)"
