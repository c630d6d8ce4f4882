#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 20) from its committed seed
# corpus, failing if any target crashes. Works with a stable toolchain only:
#   - cargo-fuzz is installed if missing (`cargo install cargo-fuzz --locked`);
#   - RUSTC_BOOTSTRAP=1 lets stable rustc take the `-Zsanitizer=address` flag cargo-fuzz
#     passes. FUZZ_SANITIZER=none drops AddressSanitizer (no -Z flag at all) if a platform
#     lacks its runtime.
# New inputs libFuzzer finds go to fuzz/work/<target> (ignored by git), never into the seeds;
# crashes go to fuzz/artifacts/<target>. Inputs under fuzz/regressions/<target> (minimized
# crashers) are replayed first, so they fail the run until the library is fixed.
#
# Usage: fuzz/run.sh [SECONDS | --hour] [TARGET...]
#   fuzz/run.sh                  every target 20 s (what .ci/run does)
#   fuzz/run.sh --hour           every target an hour, one after the other (a long soak of the
#                                parsers; run it on a quiet machine)
#   fuzz/run.sh 300 config_load  one target, five minutes
# Each target's last line says how long it ran and how many inputs it tried
# (`stat::number_of_executed_units`), for the record of CPU time fuzzed.
set -euo pipefail

secs="${1:-20}"
if [ "$secs" = "--hour" ]; then secs=3600; fi
shift || true
only=("$@")
sanitizer="${FUZZ_SANITIZER:-address}"
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
triple="$(rustc -vV | sed -n 's/^host: //p')"

# One build of every target, then the binaries are run directly: `cargo fuzz run` would
# rebuild before each target, and a tree edited meanwhile would give each a different build.
cargo fuzz build -s "$sanitizer" --target "$triple"
bin_dir="fuzz/target/$triple/release"

dict_for() {
    case "$1" in
        json_scan | translate_request | translate_stream) echo fuzz/dicts/json.dict ;;
        config_load) echo fuzz/dicts/config.dict ;;
        *) echo fuzz/dicts/http.dict ;;
    esac
}

failed=()
targets=("${only[@]}")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
for target in "${targets[@]}"; do
    mkdir -p "fuzz/artifacts/$target" "fuzz/work/$target"
    common=(-artifact_prefix="fuzz/artifacts/$target/" -timeout=10 -rss_limit_mb=2048)
    regressions=(fuzz/regressions/"$target"/*)
    if [ -e "${regressions[0]}" ]; then
        echo "== $target: replaying fuzz/regressions/$target" >&2
        if ! "$bin_dir/$target" "${common[@]}" "${regressions[@]}"; then
            failed+=("$target (regression)")
        fi
    fi
    echo "== $target: fuzzing for ${secs}s" >&2
    if ! "$bin_dir/$target" "${common[@]}" -max_total_time="$secs" \
        -dict="$(dict_for "$target")" -print_final_stats=1 \
        "fuzz/work/$target" "fuzz/corpus/$target"; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "run.sh: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "run.sh: every target ran ${secs}s without a crash" >&2
