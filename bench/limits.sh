#!/usr/bin/env bash
# The cost of sharing rate limits across gateways: one gateway (one worker) under the same wrk
# load against the built-in mock provider (ttft 0), with a project limit far above the load
# (so every request is checked and counted, none refused), in three modes:
#
#   local    no [state]: per-worker local counting only
#   exact    [state] backend = "redis", limits_sync = "exact": one EVAL round trip per request
#   batched  [state] backend = "redis", limits_sync = "batched": local counts, synced every 100 ms
#
#   bash bench/limits.sh             3 interleaved rounds, each mode: 5 s at -c32, 3 s at -c1
#
# Environment: ROUNDS (3), DURATION (5 s), C1_DURATION (3 s), CONNS (32), SYNC_MS (100),
# SERVER_CPU (0), LOAD_CPU (1: wrk and redis-server), SWITCHYARD_BIN (skip the build).
# Prints medians over rounds, ratios vs local: closed loop at -c32 (requests/s, wrk's p50/p99,
# and the gateway's and redis-server's CPU time per request, from /proc: on a machine shared
# with other work, CPU per request is the figure contention distorts least), and one
# connection (-c1: p50/p99, where the Redis round trip shows as latency).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
: "${ROUNDS:=3}" "${DURATION:=5}" "${C1_DURATION:=3}" "${CONNS:=32}" "${SYNC_MS:=100}" "${SERVER_CPU:=0}" "${LOAD_CPU:=1}"
TOKEN=sk-lr-bench
command -v wrk >/dev/null || { echo "limits.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "limits.sh: needs redis-server" >&2; exit 1; }
if [ -z "${SWITCHYARD_BIN:-}" ]; then
    cargo build --release --quiet
    SWITCHYARD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/switchyard
fi
RUN=$(mktemp -d "${TMPDIR:-/tmp}/sy-limits.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
on_load() { taskset -c "$LOAD_CPU" "$@"; }
cpu() { python3 bench/lib/procstat.py cpu "$1"; }
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "limits.sh: nothing listening on $1 ($2)" >&2
    exit 1
}

read -r REDIS_PORT P_LOCAL P_EXACT P_BATCHED < <(python3 bench/lib/free_ports.py 4)
taskset -c "$LOAD_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$RUN" >"$RUN/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=($!)
wait_port "$REDIS_PORT" redis-server

MODES=(local exact batched)
declare -A PORT=([local]=$P_LOCAL [exact]=$P_EXACT [batched]=$P_BATCHED)
declare -A PID
for m in "${MODES[@]}"; do
    {
        cat <<EOF
[server]
listen = "127.0.0.1:${PORT[$m]}"
admin_listen = ""
workers = 1

[[providers]]
id = "mock"
kind = "mock"
[providers.mock]
ttft_ms = 0

[[models]]
id = "mock-small"
provider = "mock"

[[projects]]
slug = "bench"
tokens = ["$TOKEN"]
models = ["mock-small"]
limits = { rpm = 1000000000000, tpm = 1000000000000000 }
EOF
        case $m in
            local) printf '\n[state]\npath = "%s/state"\n' "$RUN" ;;
            exact) printf '\n[state]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:%s"\nlimits_sync = "exact"\n' "$REDIS_PORT" ;;
            batched) printf '\n[state]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:%s"\nlimits_sync = "batched"\nlimits_sync_ms = %s\n' "$REDIS_PORT" "$SYNC_MS" ;;
        esac
    } >"$RUN/$m.toml"
    SWITCHYARD_LOG=warn taskset -c "$SERVER_CPU" "$SWITCHYARD_BIN" serve --config "$RUN/$m.toml" --workers 1 \
        >"$RUN/$m.log" 2>&1 &
    PID[$m]=$!
    PIDS+=($!)
    wait_port "${PORT[$m]}" "switchyard $m"
done

cat >"$RUN/chat.lua" <<EOF
wrk.method = "POST"
wrk.body = [[{"model":"mock-small","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}]]
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $TOKEN"
EOF
for m in "${MODES[@]}"; do
    code=$(curl -s -o "$RUN/check.$m" -w '%{http_code}' -X POST -H "authorization: Bearer $TOKEN" \
        -H 'content-type: application/json' --data-binary \
        '{"model":"mock-small","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}' \
        "http://127.0.0.1:${PORT[$m]}/v1/chat/completions")
    [ "$code" = 200 ] || { echo "limits.sh: $m answered $code: $(head -c 300 "$RUN/check.$m")" >&2; exit 1; }
    on_load wrk -t1 -c"$CONNS" -d1s -s "$RUN/chat.lua" "http://127.0.0.1:${PORT[$m]}/v1/chat/completions" >/dev/null
done

for r in $(seq "$ROUNDS"); do
    # Rotate the order each round, so no mode always runs first or last.
    order=("${MODES[@]:$(((r - 1) % 3))}" "${MODES[@]:0:$(((r - 1) % 3))}")
    for m in "${order[@]}"; do
        g0=$(cpu "${PID[$m]}") r0=$(cpu "$REDIS_PID")
        on_load wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency --timeout 5s -s "$RUN/chat.lua" \
            "http://127.0.0.1:${PORT[$m]}/v1/chat/completions" >"$RUN/wrk.$m.$r.txt"
        echo "$(($(cpu "${PID[$m]}") - g0)) $(($(cpu "$REDIS_PID") - r0))" >"$RUN/cpu.$m.$r.txt"
        on_load wrk -t1 -c1 -d"${C1_DURATION}s" --latency --timeout 5s -s "$RUN/chat.lua" \
            "http://127.0.0.1:${PORT[$m]}/v1/chat/completions" >"$RUN/c1.$m.$r.txt"
        echo "round $r $m: $(grep -E 'Requests/sec' "$RUN/wrk.$m.$r.txt" | tr -s ' ')" >&2
    done
done

python3 - "$RUN" "$ROUNDS" "${MODES[@]}" <<'EOF'
import re, statistics, sys
run, rounds, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def us(v, unit):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
def wrk(path):
    t = open(path).read()
    x = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
    if x:
        sys.exit(f"limits.sh: {path}: {x.group(1)} non-2xx responses: the limit is not out of reach")
    n = int(re.search(r"(\d+) requests in", t).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    p50 = us(*re.search(r"\s50%\s+([\d.]+)(us|ms|s)", t).groups())
    p99 = us(*re.search(r"\s99%\s+([\d.]+)(us|ms|s)", t).groups())
    return n, rps, p50, p99
med = statistics.median
res = {}
for m in modes:
    rows, c1 = [], []
    for r in range(1, rounds + 1):
        n, rps, p50, p99 = wrk(f"{run}/wrk.{m}.{r}.txt")
        g, rd = map(int, open(f"{run}/cpu.{m}.{r}.txt").read().split())
        rows.append((rps, p50, p99, g / n, rd / n))
        c1.append(wrk(f"{run}/c1.{m}.{r}.txt")[1:])
    res[m] = [med(c) for c in zip(*rows)] + [med(c) for c in zip(*c1)]
base = res["local"]
print(f"closed loop -c32 (medians of {rounds} rounds) and one connection -c1; ratio = mode / local")
print(f"{'mode':8} {'req/s':>9} {'p50us':>7} {'p99us':>7} {'gw cpu us/req':>13} {'redis cpu us/req':>16} | {'c1 req/s':>8} {'c1 p50us':>8} {'c1 p99us':>8}")
for m in modes:
    q, a, b, g, rd, cq, ca, cb = res[m]
    print(f"{m:8} {q:9.0f} {a:7.0f} {b:7.0f} {g:13.2f} {rd:16.2f} | {cq:8.0f} {ca:8.0f} {cb:8.0f}")
for m in modes:
    q, a, b, g, rd, cq, ca, cb = res[m]
    print(f"{m:8} ratios: req/s {q / base[0]:.3f}  p50 {a / base[1]:.2f}  p99 {b / base[2]:.2f}  "
          f"gw cpu/req {g / base[3]:.2f}  | c1 req/s {cq / base[5]:.3f}  c1 p50 {ca / base[6]:.2f}  c1 p99 {cb / base[7]:.2f}")
print(f"(raw wrk output in {run})")
EOF
