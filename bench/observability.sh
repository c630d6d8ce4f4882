#!/usr/bin/env bash
# What the operator's view costs: the gateway's throughput with the usage ledger, the JSON
# access log and a scraped /metrics all on, against all off, in the same run.
#
#   bash bench/observability.sh            3 interleaved rounds of 8 s per mode and shape
#   bash bench/observability.sh --quick    1 round of 2 s, for CI
#
# One static nginx upstream (bench/nginx) and wrk on LOAD_CPU (1); the two gateways (one
# worker each, same binary, configs differing only in [usage] and the admin listener) on
# SERVER_CPU (0), started one at a time so they never share the core. The "on" gateway
# writes its ledger and access log to files in the run directory and is scraped once a
# second. Report: req/s per mode, and on/off as a ratio (median over rounds), plain and
# streamed completions. Environment: ROUNDS, DURATION, CONNS, SERVER_CPU, LOAD_CPU,
# SWITCHYARD_BIN (skip the build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LIB=$ROOT/bench/lib
export PATH="$HOME/.cargo/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1

QUICK=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "observability.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then : "${ROUNDS:=1}" "${DURATION:=2}"; else : "${ROUNDS:=3}" "${DURATION:=8}"; fi
: "${CONNS:=64}" "${SERVER_CPU:=0}" "${LOAD_CPU:=1}"
TOKEN=sk-lr-bench
log() { printf '[observability.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    log "install: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        die "cannot install ${missing[*]}"
fi
if [ -z "${SWITCHYARD_BIN:-}" ]; then
    log "build: cargo build --release"
    cargo build --release --quiet
    SWITCHYARD_BIN=$ROOT/target/release/switchyard
fi
if [ "$(nproc)" -lt 2 ]; then LOAD_CPU=$SERVER_CPU; fi

RUN=$(mktemp -d /tmp/switchyard-observability.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

read -r UP_PORT SY_PORT ADMIN_PORT < <(python3 "$LIB/free_ports.py" 3)
wait_port() {
    local i
    for i in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    die "nothing listens on port $1 (logs in $RUN)"
}

python3 "$LIB/render.py" "$ROOT/bench/nginx/upstream.conf.in" "$RUN/upstream.conf" DIR="$RUN" PORT="$UP_PORT"
taskset -c "$LOAD_CPU" nginx -p "$RUN" -e "$RUN/upstream.err" -c "$RUN/upstream.conf" >"$RUN/upstream.log" 2>&1 &
PIDS+=($!)
wait_port "$UP_PORT"

# config MODE: the gateway's config; "on" adds the ledger, the access log and the admin listener.
config() {
    local usage admin=""
    if [ "$1" = on ]; then
        usage="ledger = \"$RUN/usage.ndjson\"
access_log = \"$RUN/access.log\""
        admin="127.0.0.1:$ADMIN_PORT"
    else
        usage='ledger = ""
access_log = ""'
    fi
    cat <<CFG
[server]
listen = "127.0.0.1:$SY_PORT"
admin_listen = "$admin"
workers = 1

[usage]
$usage

[[providers]]
id = "up"
kind = "openai"
base_url = "http://127.0.0.1:$UP_PORT/v1"
api_key_env = "BENCH_KEY"
max_idle_per_worker = 256

[[models]]
id = "bench-model"
provider = "up"
input_per_million = 0.25
output_per_million = 2.0

[[projects]]
slug = "bench"
tokens = ["$TOKEN"]
models = ["bench-model"]
policies = []
CFG
}

for shape in plain stream; do
    stream=false
    accept=application/json
    if [ "$shape" = stream ]; then stream=true; accept=text/event-stream; fi
    cat >"$RUN/$shape.lua" <<LUA
wrk.method = "POST"
wrk.body = [[{"model":"bench-model","stream":$stream,"messages":[{"role":"user","content":"Say hello."}]}]]
wrk.headers["authorization"] = "Bearer $TOKEN"
wrk.headers["content-type"] = "application/json"
wrk.headers["accept"] = "$accept"
LUA
done

# run MODE SHAPE ROUND: one gateway up for one wrk run; prints req/s.
run() {
    local mode=$1 shape=$2 round=$3 pid scraper="" rps
    config "$mode" >"$RUN/$mode.toml"
    SWITCHYARD_LOG=warn BENCH_KEY=bench taskset -c "$SERVER_CPU" "$SWITCHYARD_BIN" serve \
        --config "$RUN/$mode.toml" >"$RUN/gateway.$mode.log" 2>&1 &
    pid=$!
    wait_port "$SY_PORT"
    if [ "$mode" = on ]; then
        wait_port "$ADMIN_PORT"
        (while kill -0 "$pid" 2>/dev/null; do
            curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >/dev/null || true
            sleep 1
        done) &
        scraper=$!
    fi
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s -s "$RUN/$shape.lua" "http://127.0.0.1:$SY_PORT/v1/chat/completions" >/dev/null
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$RUN/$shape.lua" \
        "http://127.0.0.1:$SY_PORT/v1/chat/completions" >"$RUN/wrk.$mode.$shape.$round.txt"
    if grep -q "Non-2xx" "$RUN/wrk.$mode.$shape.$round.txt"; then
        # run() is called in a command substitution: the EXIT trap's list never saw this pid.
        kill "$pid" 2>/dev/null || true
        die "non-2xx answers: $RUN/wrk.$mode.$shape.$round.txt"
    fi
    rps=$(awk '/Requests\/sec/ {print $2}' "$RUN/wrk.$mode.$shape.$round.txt")
    if [ "$mode" = on ]; then
        curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$RUN/metrics.$shape.$round.txt"
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; }
    echo "$rps"
}

declare -A RPS
for round in $(seq 1 "$ROUNDS"); do
    for shape in plain stream; do
        for mode in off on; do
            RPS[$mode.$shape.$round]=$(run "$mode" "$shape" "$round")
            log "round $round $shape $mode: ${RPS[$mode.$shape.$round]} req/s"
        done
    done
done
lines=$(wc -l <"$RUN/usage.ndjson")
[ "$lines" -gt 0 ] || die "the ledger of the 'on' gateway is empty"
dropped=$(awk '/^switchyard_ledger_dropped_total/ {print $2}' "$RUN"/metrics.*.txt | sort -n | tail -1)

python3 - "$ROUNDS" "$lines" "${dropped:-0}" <<PY
import statistics, sys
rounds, lines, dropped = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rps = {$(for k in "${!RPS[@]}"; do printf '"%s": %s, ' "$k" "${RPS[$k]}"; done)}
print("observability cost: ledger + access log + /metrics scraped each second, vs all off")
print(f"(one worker on its own core, {rounds} round(s), medians; ledger lines written: {lines}, dropped: {dropped})")
print(f"{'shape':8} {'off req/s':>12} {'on req/s':>12} {'on/off':>8}")
for shape in ("plain", "stream"):
    off = statistics.median(rps[f"off.{shape}.{r}"] for r in range(1, rounds + 1))
    on = statistics.median(rps[f"on.{shape}.{r}"] for r in range(1, rounds + 1))
    ratios = [rps[f"on.{shape}.{r}"] / rps[f"off.{shape}.{r}"] for r in range(1, rounds + 1)]
    print(f"{shape:8} {off:12.0f} {on:12.0f} {statistics.median(ratios):8.3f}")
PY
log "run directory: $RUN"
