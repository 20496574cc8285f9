#!/usr/bin/env bash
# Fuzzes one harness of tests/fuzz/ with libFuzzer: builds it with clang (ASan+UBSan) from this
# tree and runs it for SECONDS (default 60) on a temporary copy of its committed corpus, so the
# tree is not modified; prints how to merge what it found into tests/fuzz/corpus/ (by content
# hash, keeping only inputs that add edge coverage).
#   scripts/fuzz.sh TARGET [SECONDS]     TARGET: fname-util http-response parse-util task-list task-spec url-util utf8-util
# clang: apt-get install clang libclang-rt-14-dev (or scripts/install-deps.sh --fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

# What each harness links, besides itself (the same code its meson test links).
declare -A sources=(
        [fname-util]="src/shared/fname-util.c src/shared/url-util.c src/shared/utf8-util.c -lcurl"
        [http-response]="daemon/http-response.c src/shared/utf8-util.c"
        [parse-util]="src/shared/parse-util.c"
        [task-list]="cli/task-list.c src/shared/fname-util.c src/shared/utf8-util.c"
        [task-spec]="daemon/task-spec.c src/shared/url-util.c src/shared/fname-util.c src/shared/utf8-util.c -lcurl"
        [url-util]="src/shared/url-util.c src/shared/utf8-util.c -lcurl"
        [utf8-util]="src/shared/utf8-util.c"
)

usage() {
        echo "usage: $0 TARGET [SECONDS]   (TARGET: $(printf '%s\n' "${!sources[@]}" | sort | xargs))" >&2
        exit 2
}

target=${1:-}
seconds=${2:-60}
if [ -z "$target" ] || [ -z "${sources[$target]:-}" ] || ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
        usage
fi

cc=${CC:-clang}
if ! command -v "$cc" >/dev/null; then
        echo "$cc not found: libFuzzer comes with clang. Install it with" >&2
        echo "    apt-get install clang libclang-rt-14-dev    (or scripts/install-deps.sh --fuzz)" >&2
        exit 1
fi
if [ ! -e "$("$cc" -print-file-name="libclang_rt.fuzzer-$(uname -m).a")" ]; then
        echo "$cc has no libFuzzer runtime: apt-get install libclang-rt-14-dev" >&2
        exit 1
fi

work=$(mktemp -d /tmp/asyncd-fuzz.XXXXXX)
cp -r "tests/fuzz/corpus/$target" "$work/corpus"
mkdir "$work/new"

# shellcheck disable=SC2086 # the source list is words
if ! "$cc" -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -Isrc/shared -Icli -Idaemon -o "$work/fuzz-$target" "tests/fuzz/fuzz-$target.c" ${sources[$target]}; then
        rm -rf "$work"
        exit 1
fi

echo "fuzzing $target for ${seconds}s in $work (new inputs go to $work/new)"
if ! (cd "$work" && "./fuzz-$target" -max_total_time="$seconds" -artifact_prefix="$work/" new corpus); then
        echo "fuzz-$target failed; the input is in $work (crash-*, leak-*, timeout-*)." >&2
        echo "Reproduce: build/tests/fuzz/fuzz-$target $work/crash-...; once fixed, add it to tests/fuzz/corpus/$target/" >&2
        exit 1
fi
echo "no failure; $(find "$work/new" -type f | wc -l) new inputs. To keep those that add coverage, then clean up:"
echo "    $work/fuzz-$target -merge=1 -use_counters=0 tests/fuzz/corpus/$target $work/new"
echo "    rm -rf $work"
