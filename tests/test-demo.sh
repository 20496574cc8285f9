#!/usr/bin/env bash
# The README's main job, as a user runs it: scripts/demo.sh must download exactly the 194 flags,
# byte for byte, report the 3 unknown codes as not found, and leave a directory given with -o
# holding files of its own untouched.
set -uo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/test-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0

expect() {              # description, command...
        local what=$1
        shift
        if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

same_as_fixtures() {    # directory, names to skip...
        local dir=$1 n=0 f cc
        shift
        for f in tests/fixtures/flags/*/*.gif; do
                cc=$(basename "$f")
                [[ " $* " == *" $cc "* ]] && continue
                cmp -s "$f" "$dir/$cc" || { echo "  $cc differs from $f or is missing"; return 1; }
                n=$((n + 1))
        done
        [ "$n" -eq $((194 - $#)) ] || { echo "  $n flags compared, not $((194 - $#))"; return 1; }
}

# The default run: its own directory under TMPDIR.
TMPDIR=$work scripts/demo.sh >"$work/out1" 2>&1
expect "demo.sh exits 0" test $? -eq 0
expect "its summary: 194 downloaded, 3 not found" \
        grep -qzE '194 downloaded\.[[:space:]]+3 not found\.' "$work/out1"
expect "asyncctl's exit status is 3 (not found)" grep -q '^asyncctl exit code: 3 ' "$work/out1"
expect "the 194 flags, byte for byte" same_as_fixtures "$work/asyncd-demo"
expect "nothing else in the output directory" test "$(ls -A "$work/asyncd-demo" | wc -l)" -eq 194

# -o DIR: a directory with a file of its own, which must survive.
mkdir "$work/mine" && echo keep >"$work/mine/br.gif" && echo other >"$work/mine/notes.txt"
TMPDIR=$work scripts/demo.sh -o "$work/mine" >"$work/out2" 2>&1
expect "demo.sh -o DIR exits 0" test $? -eq 0
expect "-o DIR: 193 downloaded, 3 not found, 1 failed (br.gif exists)" \
        grep -qzE '193 downloaded\.[[:space:]]+3 not found\.[[:space:]]+1 error' "$work/out2"
expect "-o DIR: the user's files are untouched" \
        test "$(cat "$work/mine/br.gif") $(cat "$work/mine/notes.txt")" = "keep other"
expect "-o DIR: the other 193 flags, byte for byte" same_as_fixtures "$work/mine" br.gif

[ $fail -eq 0 ] || { echo "--- demo output"; cat "$work/out1" "$work/out2"; }
exit $fail
