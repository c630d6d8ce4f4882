#!/usr/bin/env bash
# Instructions per request of the gateway process, counted by callgrind: a figure that does not
# move with the machine's noise, to compare two builds (or a change) a few percent apart, where
# the throughput ratios of load.sh cannot tell.
#
#   bash bench/instructions.sh [BIN ...]     default: target/release/switchyard (built if missing)
#
# For each binary: the built-in mock-upstream (of the first binary, so every gateway gets the same
# upstream) on a free port, the gateway under valgrind --tool=callgrind with one worker, a 2 s
# warm-up, the counters zeroed (callgrind_control -z), then wrk -c4 for DURATION (10) seconds with
# a streaming chat request, trace on and then `x-routerly-trace: off`. Prints total Ir (all
# threads of the gateway) divided by the requests wrk completed.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
for t in valgrind callgrind_control wrk curl; do
    command -v "$t" >/dev/null || {
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind wrk curl >/dev/null
        break
    }
done
BINS=("$@")
if [ ${#BINS[@]} -eq 0 ]; then
    cargo build --release --quiet --bin switchyard
    BINS=("${CARGO_TARGET_DIR:-target}/release/switchyard")
fi
RUN=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-ir.XXXXXX")
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
read -r UP GW < <(python3 bench/lib/free_ports.py 2)

"${BINS[0]}" mock-upstream --listen "127.0.0.1:$UP" --workers 1 >"$RUN/mock.log" 2>&1 &
PIDS+=($!)
cat >"$RUN/gw.toml" <<T
[server]
listen = "127.0.0.1:$GW"
admin_listen = ""
workers = 1
[[providers]]
id = "up"
kind = "openai"
base_url = "http://127.0.0.1:$UP/v1"
[[models]]
id = "m"
provider = "up"
[[projects]]
slug = "p"
tokens = ["sk-lr-bench"]
models = ["m"]
policies = ["health", "cheapest"]
T
lua() {
    cat <<'L'
wrk.method = "POST"
wrk.body = '{"model":"m","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"hello there"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-lr-bench"
L
    [ "$1" = off ] && echo 'wrk.headers["x-routerly-trace"] = "off"'
    true
}
lua on >"$RUN/on.lua"
lua off >"$RUN/off.lua"
URL=http://127.0.0.1:$GW/v1/chat/completions

for bin in "${BINS[@]}"; do
    for trace in on off; do
        out=$RUN/cg.$trace.$$.$RANDOM
        SWITCHYARD_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
            "$bin" serve --config "$RUN/gw.toml" >"$RUN/gw.log" 2>&1 &
        gw=$!
        PIDS+=("$gw")
        for _ in $(seq 200); do
            curl -sf -o /dev/null "http://127.0.0.1:$GW/v1/models" -H 'authorization: Bearer sk-lr-bench' && break
            sleep 0.1
        done
        wrk -t1 -c4 -d2s -s "$RUN/$trace.lua" "$URL" >/dev/null 2>&1
        callgrind_control -z "$gw" >/dev/null 2>&1
        wrk -t1 -c4 -d"${DURATION}s" -s "$RUN/$trace.lua" "$URL" >"$RUN/wrk.txt" 2>&1
        kill -INT "$gw"
        wait "$gw" || true
        req=$(grep -Eo '^ +[0-9]+ requests' "$RUN/wrk.txt" | grep -Eo '[0-9]+')
        ir=$(grep -E '^(summary|totals):' "$out" | grep -Eo '[0-9]+' | head -1)
        printf '%-40s trace %-3s  %8d requests  %9d Ir/request\n' "$bin" "$trace" "$req" $((ir / req))
    done
done
rm -rf "$RUN"
