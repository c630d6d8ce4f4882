#!/usr/bin/env bash
# Live streams at scale: thousands of concurrent, slowly paced SSE answers held open at once,
# relayed by nginx and by the gateway (one worker each, alone on SERVER_CPU), against the
# direct row (clients straight to the paced upstream).
#
#   bash bench/streams.sh            1,000 streams at 20 events/s and 10,000 at 2 events/s, 30 s
#   bash bench/streams.sh --quick    200 at 20/s and 2,000 at 2/s, 6 s (for CI)
#
# The paced upstream is `switchyard mock-upstream` (events paced to the microsecond, each a
# chat-completion chunk of ~200 bytes) and the clients are `switchyard bench` (closed loop,
# one stream per connection, lasting the whole run), both on LOAD_CPU (1): check the direct
# row's gap against the configured one to see that they keep up. For each proxy the bench
# reports: CPU per relayed event (the proxy's utime+stime over the run / events the clients
# received), the gap between events the clients saw (p50/p99) and what the proxy added to the
# direct row's, RSS per open stream ((RSS with every stream open - RSS before) / streams), and
# errors. Ratios gateway/nginx from the same run. Environment: SERVER_CPU, LOAD_CPU,
# SWITCHYARD_BIN (skip the build), SHAPES ("streams:events_per_s ..."), SECONDS_PER_RUN.
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
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "streams.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    : "${SHAPES:=200:20 2000:2}" "${SECONDS_PER_RUN:=6}"
else
    : "${SHAPES:=1000:20 10000:2}" "${SECONDS_PER_RUN:=30}"
fi
: "${SERVER_CPU:=0}" "${LOAD_CPU:=1}"
TOKEN=sk-lr-bench
# shellcheck source=lib/provider_key.sh
. "$LIB/provider_key.sh"
log() { printf '[streams.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v nginx >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends nginx >/dev/null
}
# Two sockets per proxied stream, one per direct one, plus the proxies' upstream pools.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ -z "${SWITCHYARD_BIN:-}" ]; then
    log "build: cargo build --release"
    cargo build --release --quiet --bin switchyard || die "cargo build --release failed"
    SWITCHYARD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/switchyard
fi

RUN=$(mktemp -d /tmp/switchyard-streams.XXXXXX)
mkdir -p "$RUN/raw"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

wait_port() { # PORT PID NAME LOG
    for _ in $(seq 1 200); do
        kill -0 "$2" 2>/dev/null || { tail -20 "$4" >&2; die "$3 exited"; }
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    die "$3 did not listen on port $1"
}

# The servers of one shape: the paced mock (R events/s, replies of E events, so every stream
# lasts the run), nginx and the gateway in front of it.
start_servers() { # R E
    read -r MOCK_PORT PROXY_PORT SY_PORT < <(python3 "$LIB/free_ports.py" 3)
    PIDS=()
    taskset -c "$LOAD_CPU" "$SWITCHYARD_BIN" mock-upstream --listen "127.0.0.1:$MOCK_PORT" \
        --workers 1 --ttft-ms 0 --tokens-per-s "$1" --reply-tokens "$2" >"$RUN/mock.log" 2>&1 &
    PIDS+=($!)
    MOCK_PID=$!
    wait_port "$MOCK_PORT" "$MOCK_PID" mock-upstream "$RUN/mock.log"

    cat >"$RUN/proxy.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $RUN/proxy.pid;
error_log $RUN/proxy.err warn;
events { worker_connections 30000; }
http {
    access_log off;
    client_body_temp_path $RUN/tmp-body;
    proxy_temp_path $RUN/tmp-proxy;
    fastcgi_temp_path $RUN/tmp-fcgi;
    uwsgi_temp_path $RUN/tmp-uwsgi;
    scgi_temp_path $RUN/tmp-scgi;
    keepalive_timeout 600s;
    upstream up { server 127.0.0.1:$MOCK_PORT; keepalive 1024; }
    server {
        listen 127.0.0.1:$PROXY_PORT backlog=16384;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_read_timeout 600s;
        location / { proxy_pass http://up; }
    }
}
EOF
    taskset -c "$SERVER_CPU" nginx -p "$RUN" -e "$RUN/proxy.err" -c "$RUN/proxy.conf" >"$RUN/proxy.log" 2>&1 &
    PIDS+=($!)
    NGINX_PID=$!
    wait_port "$PROXY_PORT" "$NGINX_PID" nginx "$RUN/proxy.err"

    cat >"$RUN/gateway.toml" <<EOF
[server]
listen = "127.0.0.1:$SY_PORT"
admin_listen = ""
workers = 1

# As nginx's access_log off: no per-request line.
[usage]
ledger = ""
access_log = ""

[[providers]]
id = "mock"
kind = "openai"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_key_env = "BENCH_KEY"

[[models]]
id = "bench-model"
provider = "mock"

[[projects]]
slug = "bench"
tokens = ["$TOKEN"]
models = ["bench-model"]
policies = []
EOF
    # A key shaped like a provider's: the relay withholds any answer showing a piece of it.
    SWITCHYARD_LOG=warn BENCH_KEY="$(provider_key)" taskset -c "$SERVER_CPU" "$SWITCHYARD_BIN" serve \
        --config "$RUN/gateway.toml" --workers 1 >"$RUN/gateway.log" 2>&1 &
    PIDS+=($!)
    SY_PID=$!
    wait_port "$SY_PORT" "$SY_PID" switchyard "$RUN/gateway.log"
}

# One row: N streams at R events/s through URL; the proxy's CPU and RSS around it.
row() { # NAME URL PID N R
    local name=$1 url=$2 pid=$3 n=$4 r=$5
    local events=$((r * SECONDS_PER_RUN))
    local out="$RUN/raw/$name.$n.$r.json"
    local cpu0 rss0 cpu1 rss_mid
    [ "$pid" = - ] || { cpu0=$(python3 "$LIB/procstat.py" cpu "$pid"); rss0=$(python3 "$LIB/procstat.py" rss "$pid"); }
    taskset -c "$LOAD_CPU" "$SWITCHYARD_BIN" bench --url "$url" --model bench-model --stream \
        --concurrency "$n" --requests "$n" --max-tokens "$events" --prompt-tokens 8 \
        --timeout $((SECONDS_PER_RUN * 4 + 30)) --token "$TOKEN" --quiet --json "$out" \
        >"$RUN/raw/$name.$n.$r.txt" 2>&1 &
    local bench=$!
    if [ "$pid" != - ]; then
        # Every stream is open from shortly after the start until near the end.
        sleep $((SECONDS_PER_RUN / 2))
        rss_mid=$(python3 "$LIB/procstat.py" rss "$pid")
    fi
    wait "$bench" || { tail -5 "$RUN/raw/$name.$n.$r.txt" >&2; die "bench failed for $name $n:$r"; }
    if [ "$pid" != - ]; then
        cpu1=$(python3 "$LIB/procstat.py" cpu "$pid")
        echo "$name $n $r $out $((cpu1 - cpu0)) $rss0 $rss_mid" >>"$RUN/rows.txt"
    else
        echo "$name $n $r $out - - -" >>"$RUN/rows.txt"
    fi
}


: >"$RUN/rows.txt"
for shape in $SHAPES; do
    n=${shape%%:*}
    r=${shape##*:}
    log "shape: $n streams at $r events/s for ${SECONDS_PER_RUN}s"
    start_servers "$r" $((r * SECONDS_PER_RUN))
    row direct "http://127.0.0.1:$MOCK_PORT" - "$n" "$r"
    row nginx "http://127.0.0.1:$PROXY_PORT" "$NGINX_PID" "$n" "$r"
    row switchyard "http://127.0.0.1:$SY_PORT" "$SY_PID" "$n" "$r"
    cleanup
done

python3 - "$RUN/rows.txt" <<'PY' | tee "$RUN/report.txt"
import json, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for name, n, r, path, cpu, rss0, rss_mid in rows:
    d = json.load(open(path))
    res = d["result"] if "result" in d else d
    itl = res.get("itl_ms", {})
    # The mock sends one token per event.
    events = res["output_tokens"]
    errors = res["errors"]
    by[(name, n, r)] = dict(
        p50=itl.get("p50"), p99=itl.get("p99"), events=events, errors=errors,
        cpu_us=None if cpu == "-" else int(cpu),
        rss_kib=None if rss0 == "-" else (int(rss_mid) - int(rss0)),
        n=int(n))
print(f"{'row':<11}{'streams':>8}{'ev/s':>6}{'events':>10}{'errors':>7}{'gap p50 ms':>11}{'gap p99 ms':>11}"
      f"{'added p50':>10}{'added p99':>10}{'cpu us/ev':>10}{'KiB/stream':>11}")
for (name, n, r), v in by.items():
    base = by.get(("direct", n, r), {})
    add50 = v["p50"] - base["p50"] if name != "direct" and base.get("p50") is not None else None
    add99 = v["p99"] - base["p99"] if name != "direct" and base.get("p99") is not None else None
    cpu_ev = v["cpu_us"] / v["events"] if v["cpu_us"] is not None and v["events"] else None
    kib = v["rss_kib"] / v["n"] if v["rss_kib"] is not None else None
    v.update(cpu_ev=cpu_ev, kib=kib)
    f = lambda x, w, p=3: f"{x:>{w}.{p}f}" if x is not None else f"{'-':>{w}}"
    print(f"{name:<11}{n:>8}{r:>6}{v['events']:>10}{v['errors']:>7}{f(v['p50'],11)}{f(v['p99'],11)}"
          f"{f(add50,10)}{f(add99,10)}{f(cpu_ev,10,2)}{f(kib,11,2)}")
for (name, n, r), v in by.items():
    if name != "switchyard":
        continue
    ng = by.get(("nginx", n, r))
    if ng and ng.get("cpu_ev") and v.get("cpu_ev"):
        print(f"switchyard/nginx at {n} x {r}/s: cpu per event {v['cpu_ev'] / ng['cpu_ev']:.2f}, "
              f"RSS per stream {v['kib']:.2f} vs {ng['kib']:.2f} KiB")
PY
log "run directory: $RUN"
