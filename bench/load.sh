#!/usr/bin/env bash
# End-to-end load bench of the gateway against nginx and a peer gateway, on one machine.
#
#   bash bench/load.sh            full run: 3 interleaved rounds (~22 minutes)
#   bash bench/load.sh --quick    1 round, 2 s per run, for CI (~3 minutes once oha is installed)
#
# Proxies under test run on core SERVER_CPU (0), one worker each, alone; the upstreams (static
# nginx, paced SSE), load generators and probes on LOAD_CPU (1), so a proxy's max req/s is its
# own, not bounded by the upstream's CPU on the same core. Targets: direct (the static nginx
# upstream itself: the physical limit), nginx (a plain reverse proxy, access log off),
# switchyard (per-request logging off: SWITCHYARD_LOG=warn, no access log, no usage ledger),
# nginx-log and switchyard-log (the same with each one's default per-request logging on: nginx's
# access log; the gateway's info line, JSON access log and usage ledger; closed-loop rows only), peer (TensorZero's
# gateway, or LiteLLM's proxy as a fallback).
# Modes: plain (chat.json) and stream (stream.sse, 22 events, 5.3 KB) get every row; short
# (short.sse, 5 chunks and [DONE], < 1 KB) and long (long.sse, 130 chunks, ~25 KB) get the
# closed-loop rows only, on every target but the peer.
# Every round runs every target; figures are medians over rounds. Report: bench/results/latest.txt
# and latest.json; raw tool outputs stay in the run directory it prints. See bench/README.md.
#
# Environment overrides: ROUNDS, DURATION (closed loop s), SHAPE_DURATION (closed loop s of the
# short and long streams), C1_DURATION, RATE_DURATION, CONNS
# (closed-loop connections), RATE_CONNS, PROBE_COUNT, GAP_COUNT, PAIRED_COUNT, PAIRED_SECONDS,
# IDLE_CONNS, SERVER_CPU, LOAD_CPU, SWITCHYARD_BIN (skip the build), INSTALL_OHA=0 (do not build
# oha), PEER=tensorzero|litellm|none, TENSORZERO_VERSION, KEEP_RUN=0 (delete the run directory).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LIB=$ROOT/bench/lib
export PATH="$HOME/.cargo/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ beside the helpers

QUICK=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "load.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    : "${ROUNDS:=1}" "${DURATION:=2}" "${C1_DURATION:=2}" "${RATE_DURATION:=2}"
    : "${PROBE_COUNT:=100}" "${GAP_COUNT:=10}" "${IDLE_CONNS:=10000}" "${PAIRED_COUNT:=5000}"
    : "${PAIRED_SECONDS:=3}" "${SHAPE_DURATION:=1}"
else
    : "${ROUNDS:=3}" "${DURATION:=8}" "${C1_DURATION:=5}" "${RATE_DURATION:=6}"
    : "${PROBE_COUNT:=500}" "${GAP_COUNT:=30}" "${IDLE_CONNS:=10000}" "${PAIRED_COUNT:=20000}"
    : "${PAIRED_SECONDS:=6}" "${SHAPE_DURATION:=$DURATION}"
fi
: "${CONNS:=64}" "${RATE_CONNS:=64}" "${SERVER_CPU:=0}" "${LOAD_CPU:=1}"
: "${PEER:=tensorzero}" "${TENSORZERO_VERSION:=2026.6.0}" "${LITELLM_SPEC:=litellm[proxy]<1.107}"
PACED_GAP_MS=10
TOKEN=sk-lr-bench
SHAPE_TOKEN=sk-lr-shape # the short and long streams' project (the same length as TOKEN)

START=$(date +%s)
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
log() { printf '[load.sh +%3ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- installs --------------------------------------------------------------------------------
log "install: checking tools"
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v taskset >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    log "install: apt-get install ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
fi

# The open-loop generator for the fixed-rate runs: oha (--latency-correction measures from each
# request's scheduled start, so a slow response cannot hide the requests queued behind it). wrk2
# (-R) does the same where it is packaged. Without either, the fixed-rate rows are left empty.
OPEN_LOOP=none
if ! command -v oha >/dev/null && [ "${INSTALL_OHA:-1}" = 1 ]; then
    log "install: cargo install oha --locked (a few minutes, once)"
    cargo install oha --locked --quiet >"${TMPDIR:-/tmp}/oha-install.log" 2>&1 ||
        log "install: oha did not build (see ${TMPDIR:-/tmp}/oha-install.log); trying wrk2"
fi
if command -v oha >/dev/null; then
    OPEN_LOOP=oha
elif command -v wrk2 >/dev/null || { apt-cache show wrk2 >/dev/null 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk2 >/dev/null 2>&1; }; then
    OPEN_LOOP=wrk2
else
    log "WARNING: no open-loop load generator (oha, wrk2): fixed-rate latency will be n/a"
fi

if [ -z "${SWITCHYARD_BIN:-}" ]; then
    log "build: cargo build --release"
    cargo build --release --quiet --bin switchyard || die "cargo build --release failed"
    SWITCHYARD_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/switchyard
fi
[ -x "$SWITCHYARD_BIN" ] || die "no switchyard binary at $SWITCHYARD_BIN"

# --- run directory, limits, cleanup ----------------------------------------------------------
RUN=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")
mkdir -p "$RUN/raw" "$RUN/lua"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $((IDLE_CONNS + 1024)) ] || die "ulimit -n is $(ulimit -n): too low for $IDLE_CONNS connections"
SERVER_PIDS=()
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${SERVER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP_RUN:-1}" = 0 ]; then rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

if [ "$(nproc)" -lt 2 ]; then
    log "WARNING: one CPU: servers and load generator share it"
    LOAD_CPU=$SERVER_CPU
fi
# on_server CMD... &: exec, so that $! is the server itself (a backgrounded function is a subshell,
# and killing that would leave its child running).
on_server() { exec taskset -c "$SERVER_CPU" "$@"; }
on_load() { taskset -c "$LOAD_CPU" "$@"; }
# on_upstream CMD... &: as on_server, on the load generators' core (off the proxies' core).
on_upstream() { exec taskset -c "$LOAD_CPU" "$@"; }

read -r UP_PORT PACED_PORT PROXY_PORT SY_PORT LITELLM_PORT PROXY_LOG_PORT SY_LOG_PORT < <(python3 "$LIB/free_ports.py" 7)

# wait_port PORT PID NAME LOG: until PORT accepts, or fail with the tail of LOG.
wait_port() {
    local i
    for i in $(seq 1 200); do
        kill -0 "$2" 2>/dev/null || { tail -20 "$4" >&2; die "$3 exited at start (log: $4)"; }
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    tail -20 "$4" >&2
    die "$3 did not listen on port $1 within 10 s (log: $4)"
}

# --- servers ---------------------------------------------------------------------------------
log "start: static nginx upstream :$UP_PORT, paced SSE upstream :$PACED_PORT, nginx proxy :$PROXY_PORT"
python3 "$LIB/render.py" "$ROOT/bench/nginx/upstream.conf.in" "$RUN/upstream.conf" DIR="$RUN" PORT="$UP_PORT"
python3 "$LIB/render.py" "$ROOT/bench/nginx/proxy.conf.in" "$RUN/proxy.conf" DIR="$RUN" PORT="$PROXY_PORT" \
    UP_PORT="$UP_PORT" PACED_PORT="$PACED_PORT"
on_upstream nginx -p "$RUN" -e "$RUN/upstream.err" -c "$RUN/upstream.conf" >"$RUN/upstream.log" 2>&1 &
UP_PID=$!
SERVER_PIDS+=("$UP_PID")
on_upstream python3 "$LIB/paced_upstream.py" "$PACED_PORT" "$PACED_GAP_MS" >"$RUN/paced.log" 2>&1 &
PACED_PID=$!
SERVER_PIDS+=("$PACED_PID")
on_server nginx -p "$RUN" -e "$RUN/proxy.err" -c "$RUN/proxy.conf" >"$RUN/proxy.log" 2>&1 &
PROXY_PID=$!
SERVER_PIDS+=("$PROXY_PID")
wait_port "$UP_PORT" "$UP_PID" "nginx upstream" "$RUN/upstream.err"
wait_port "$PACED_PORT" "$PACED_PID" "paced upstream" "$RUN/paced.log"
wait_port "$PROXY_PORT" "$PROXY_PID" "nginx proxy" "$RUN/proxy.err"
# nginx-log: the same proxy with its default access log (combined format, to a file).
python3 "$LIB/render.py" "$ROOT/bench/nginx/proxy.conf.in" "$RUN/proxy-log.conf" DIR="$RUN" PORT="$PROXY_LOG_PORT" \
    UP_PORT="$UP_PORT" PACED_PORT="$PACED_PORT"
sed -i "s|access_log off;|access_log $RUN/proxy-log.access.log;|; s|/proxy.pid;|/proxy-log.pid;|" "$RUN/proxy-log.conf"
on_server nginx -p "$RUN" -e "$RUN/proxy-log.err" -c "$RUN/proxy-log.conf" >"$RUN/proxy-log.log" 2>&1 &
PROXY_LOG_PID=$!
SERVER_PIDS+=("$PROXY_LOG_PID")
wait_port "$PROXY_LOG_PORT" "$PROXY_LOG_PID" "nginx proxy with access log" "$RUN/proxy-log.err"

log "start: switchyard :$SY_PORT ($SWITCHYARD_BIN)"
cat >"$RUN/bench-config.toml" <<EOF
[server]
listen = "127.0.0.1:$SY_PORT"
admin_listen = ""
workers = 1

[[providers]]
id = "up"
kind = "openai"
base_url = "http://127.0.0.1:$UP_PORT/v1"
api_key_env = "BENCH_KEY"
max_idle_per_worker = 256

[[providers]]
id = "paced"
kind = "openai"
base_url = "http://127.0.0.1:$PACED_PORT/v1"
api_key_env = "BENCH_KEY"

# The short and long stream shapes: the same static upstream on the paths that answer them.
[[providers]]
id = "up-short"
kind = "openai"
base_url = "http://127.0.0.1:$UP_PORT/short/v1"
api_key_env = "BENCH_KEY"
max_idle_per_worker = 256

[[providers]]
id = "up-long"
kind = "openai"
base_url = "http://127.0.0.1:$UP_PORT/long/v1"
api_key_env = "BENCH_KEY"
max_idle_per_worker = 256

[[models]]
id = "bench-model"
provider = "up"

[[models]]
id = "bench-paced"
provider = "paced"

[[models]]
id = "bench-short"
provider = "up-short"

[[models]]
id = "bench-long"
provider = "up-long"

[[projects]]
slug = "bench"
tokens = ["$TOKEN"]
models = ["bench-model", "bench-paced"]
policies = []

# The stream shapes in a project of their own: the router scores every model of the request's
# project, so adding them to "bench" would change the plain and stream rows' work and trace.
[[projects]]
slug = "bench-shapes"
tokens = ["$SHAPE_TOKEN"]
models = ["bench-short", "bench-long"]
policies = []
EOF
# The provider key is one the fixtures cannot hold: the gateway withholds any answer that
# echoes a fragment of it (a short word like "bench" is in the fixtures' text).
# shellcheck source=lib/provider_key.sh
. "$LIB/provider_key.sh"
BENCH_KEY=$(provider_key)
# switchyard-log: the gateway as shipped, its default per-request logging on (the info line of
# SWITCHYARD_LOG's default level and the JSON access log on stderr, here to a file).
sed "s|^listen = .*|listen = \"127.0.0.1:$SY_LOG_PORT\"|" "$RUN/bench-config.toml" >"$RUN/bench-config-log.toml"
printf '\n[state]\npath = "%s"\n' "$RUN/state-log" >>"$RUN/bench-config-log.toml" # one store per process
printf '\n[usage]\naccess_log = ""\nledger = ""\n' >>"$RUN/bench-config.toml"
SWITCHYARD_LOG=warn BENCH_KEY=$BENCH_KEY on_server "$SWITCHYARD_BIN" serve --config "$RUN/bench-config.toml" \
    --workers 1 >"$RUN/switchyard.log" 2>&1 &
SY_PID=$!
SERVER_PIDS+=("$SY_PID")
wait_port "$SY_PORT" "$SY_PID" "switchyard" "$RUN/switchyard.log"
BENCH_KEY=$BENCH_KEY on_server "$SWITCHYARD_BIN" serve --config "$RUN/bench-config-log.toml" \
    --workers 1 >"$RUN/switchyard-log.log" 2>&1 &
SY_LOG_PID=$!
SERVER_PIDS+=("$SY_LOG_PID")
wait_port "$SY_LOG_PORT" "$SY_LOG_PID" "switchyard with logging" "$RUN/switchyard-log.log"

# The peer: TensorZero's gateway from its PyPI wheel (bench/lib/peer_gateway.py), else LiteLLM.
# The peers are installed into the bench's own virtual environment, never the user's Python.
PEER_NAME=none PEER_VERSION="" PEER_PID="" PEER_URL=""
PEER_VENV=${CARGO_TARGET_DIR:-$ROOT/target}/bench-venv
PEER_PY=$PEER_VENV/bin/python
peer_venv() {
    [ -x "$PEER_PY" ] || python3 -m venv "$PEER_VENV" >"$RUN/venv.log" 2>&1
}
start_tensorzero() {
    peer_venv || return 1
    "$PEER_PY" -c 'import tensorzero' 2>/dev/null || {
        log "install: pip install tensorzero==$TENSORZERO_VERSION (into $PEER_VENV)"
        "$PEER_PY" -m pip install -q --disable-pip-version-check "tensorzero==$TENSORZERO_VERSION" \
            >"$RUN/pip-tensorzero.log" 2>&1 || return 1
    }
    cat >"$RUN/tensorzero.toml" <<EOF
[gateway]
observability.enabled = false

[models.bench]
routing = ["up"]

[models.bench.providers.up]
type = "openai"
model_name = "bench-model"
api_base = "http://127.0.0.1:$UP_PORT/v1/"
api_key_location = "env::BENCH_KEY"

[models.bench-paced]
routing = ["paced"]

[models.bench-paced.providers.paced]
type = "openai"
model_name = "bench-paced"
api_base = "http://127.0.0.1:$PACED_PORT/v1/"
api_key_location = "env::BENCH_KEY"
EOF
    RUST_LOG=warn BENCH_KEY=bench on_server "$PEER_PY" "$LIB/peer_gateway.py" "$RUN/tensorzero.toml" \
        >"$RUN/peer.log" 2>&1 &
    PEER_PID=$!
    SERVER_PIDS+=("$PEER_PID")
    local i
    for i in $(seq 1 300); do
        grep -q '^version ' "$RUN/peer.log" && break
        kill -0 "$PEER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    PEER_URL=$(sed -n 's/^base_url //p' "$RUN/peer.log")
    [ -n "$PEER_URL" ] || return 1
    PEER_URL=$PEER_URL/chat/completions
    PEER_VERSION=$(sed -n 's/^version //p' "$RUN/peer.log")
    PEER_NAME=tensorzero
    PEER_MODEL=tensorzero::model_name::bench
    PEER_PACED_MODEL=tensorzero::model_name::bench-paced
}
start_litellm() {
    peer_venv || return 1
    "$PEER_PY" -c 'import litellm.proxy' 2>/dev/null || {
        log "install: pip install '$LITELLM_SPEC' (into $PEER_VENV)"
        "$PEER_PY" -m pip install -q --disable-pip-version-check "$LITELLM_SPEC" \
            >"$RUN/pip-litellm.log" 2>&1 || return 1
    }
    cat >"$RUN/litellm.yaml" <<EOF
model_list:
  - model_name: bench-model
    litellm_params: {model: openai/bench-model, api_base: "http://127.0.0.1:$UP_PORT/v1", api_key: bench}
  - model_name: bench-paced
    litellm_params: {model: openai/bench-paced, api_base: "http://127.0.0.1:$PACED_PORT/v1", api_key: bench}
litellm_settings: {set_verbose: false, telemetry: false}
EOF
    LITELLM_LOG=ERROR on_server "$PEER_VENV/bin/litellm" --config "$RUN/litellm.yaml" --host 127.0.0.1 \
        --port "$LITELLM_PORT" --num_workers 1 >"$RUN/peer.log" 2>&1 &
    PEER_PID=$!
    SERVER_PIDS+=("$PEER_PID")
    local i
    for i in $(seq 1 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$LITELLM_PORT") 2>/dev/null && break
        kill -0 "$PEER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    PEER_URL=http://127.0.0.1:$LITELLM_PORT/v1/chat/completions
    PEER_VERSION=$("$PEER_PY" -c 'from importlib.metadata import version; print(version("litellm"))')
    PEER_NAME=litellm
    PEER_MODEL=bench-model
    PEER_PACED_MODEL=bench-paced
}
if [ "$PEER" = tensorzero ]; then
    log "start: peer gateway (TensorZero)"
    start_tensorzero || {
        log "WARNING: TensorZero's gateway did not start (log: $RUN/peer.log); falling back to LiteLLM"
        PEER=litellm
    }
fi
if [ "$PEER" = litellm ] && [ "$PEER_NAME" = none ]; then
    log "start: peer gateway (LiteLLM proxy)"
    start_litellm || { log "WARNING: LiteLLM did not start (log: $RUN/peer.log); no peer"; PEER_NAME=none; }
fi

# --- targets ---------------------------------------------------------------------------------
TARGETS=(direct nginx switchyard)
declare -A URL PACED_URL MODEL PACED_MODEL PID
URL[direct]=http://127.0.0.1:$UP_PORT/v1/chat/completions
PACED_URL[direct]=http://127.0.0.1:$PACED_PORT/v1/chat/completions
URL[nginx]=http://127.0.0.1:$PROXY_PORT/v1/chat/completions
PACED_URL[nginx]=http://127.0.0.1:$PROXY_PORT/paced/v1/chat/completions
URL[switchyard]=http://127.0.0.1:$SY_PORT/v1/chat/completions
PACED_URL[switchyard]=${URL[switchyard]}
MODEL[direct]=bench-model MODEL[nginx]=bench-model MODEL[switchyard]=bench-model
PACED_MODEL[direct]=bench-paced PACED_MODEL[nginx]=bench-paced PACED_MODEL[switchyard]=bench-paced
PID[direct]=$UP_PID PID[nginx]=$PROXY_PID PID[switchyard]=$SY_PID
# The gateway again, as an Anthropic client reaching the same OpenAI-protocol upstream: every
# request and stream translated (messages <-> chat completions), closed-loop rows only, beside
# the passthrough row of the same run.
TARGETS+=(translated)
declare -A API
URL[translated]=http://127.0.0.1:$SY_PORT/v1/messages MODEL[translated]=bench-model
PACED_URL[translated]=${URL[translated]} PACED_MODEL[translated]=bench-paced
PID[translated]=$SY_PID API[translated]=messages
# Both proxies again with their default per-request logging on, closed-loop rows only.
TARGETS+=(nginx-log switchyard-log)
URL[nginx-log]=http://127.0.0.1:$PROXY_LOG_PORT/v1/chat/completions
PACED_URL[nginx-log]=http://127.0.0.1:$PROXY_LOG_PORT/paced/v1/chat/completions
URL[switchyard-log]=http://127.0.0.1:$SY_LOG_PORT/v1/chat/completions PACED_URL[switchyard-log]=${URL[switchyard-log]}
MODEL[nginx-log]=bench-model MODEL[switchyard-log]=bench-model
PACED_MODEL[nginx-log]=bench-paced PACED_MODEL[switchyard-log]=bench-paced
PID[nginx-log]=$PROXY_LOG_PID PID[switchyard-log]=$SY_LOG_PID
# closed_only TARGET: the targets measured by the closed-loop rows only
closed_only() { [ "$1" = translated ] || [ "$1" = nginx-log ] || [ "$1" = switchyard-log ]; }
# The short and long stream shapes (closed-loop rows only): nginx and direct on the upstream's
# path for the shape (/short/v1/..., /long/v1/..., which the nginx proxy's `location /` passes
# through as it is), the gateway on its own path with the shape's model (bench-short, bench-long),
# whose provider's base_url is that path. Every target so far; not the peer (added below).
SHAPES=(short long)
SHAPE_TARGETS=("${TARGETS[@]}")
declare -A SHAPE_URL SHAPE_MODEL
for t in "${SHAPE_TARGETS[@]}"; do
    for mode in "${SHAPES[@]}"; do
        case $t in
            direct | nginx | nginx-log)
                SHAPE_URL[$t.$mode]=${URL[$t]%/v1/chat/completions}/$mode/v1/chat/completions
                SHAPE_MODEL[$t.$mode]=${MODEL[$t]} ;;
            *) SHAPE_URL[$t.$mode]=${URL[$t]} SHAPE_MODEL[$t.$mode]=bench-$mode ;;
        esac
    done
done
# url_of / model_of TARGET MODE: where a mode's requests go, and their model
url_of() { echo "${SHAPE_URL[$1.$2]:-${URL[$1]}}"; }
model_of() { echo "${SHAPE_MODEL[$1.$2]:-${MODEL[$1]}}"; }
if [ "$PEER_NAME" != none ]; then
    TARGETS+=(peer)
    URL[peer]=$PEER_URL PACED_URL[peer]=$PEER_URL
    MODEL[peer]=$PEER_MODEL PACED_MODEL[peer]=$PEER_PACED_MODEL PID[peer]=$PEER_PID
fi

# body MODEL MODE [API]: a chat completions body, or a messages one (API=messages); every mode but
# plain is streamed
body() {
    local bound=""
    if [ "${3:-chat}" = messages ]; then bound=',"max_tokens":256'; fi
    if [ "$2" != plain ]; then
        printf '{"model":"%s","messages":[{"role":"user","content":"hello"}]%s,"stream":true}' "$1" "$bound"
    else
        printf '{"model":"%s","messages":[{"role":"user","content":"hello"}]%s}' "$1" "$bound"
    fi
}
# headers MODE: one 'name: value' per line
headers() {
    local token=$TOKEN
    if [ "$1" = short ] || [ "$1" = long ]; then token=$SHAPE_TOKEN; fi
    printf 'content-type: application/json\nauthorization: Bearer %s\n' "$token"
    if [ "$1" != plain ]; then printf 'accept: text/event-stream\n'; fi
}
header_args() { # header_args FLAG MODE: FLAG 'name: value' pairs for curl, oha, the probes
    local h
    while IFS= read -r h; do printf '%s\0%s\0' "$1" "$h"; done < <(headers "$2")
}

# --- correctness before load -----------------------------------------------------------------
declare -A EXPECT_BYTES
# check TARGET MODE URL MODEL: 200, the right content type, the upstream's content.
check() {
    local t=$1 mode=$2 url=$3 model=$4 out=$RUN/check.$1.$2.$(basename "$4") code ctype
    local -a hargs
    mapfile -d '' hargs < <(header_args -H "$mode")
    read -r code ctype < <(curl -sS -m 10 -o "$out" -w '%{http_code} %{content_type}\n' \
        "${hargs[@]}" --data-binary "$(body "$model" "$mode" "${API[$t]:-chat}")" "$url") ||
        die "$t ($mode): no answer from $url"
    [ "$code" = 200 ] || die "$t ($mode): status $code from $url: $(head -c 500 "$out")"
    if [ "$mode" != plain ]; then
        [[ $ctype == text/event-stream* ]] || die "$t ($mode): content-type '$ctype'"
        local end='^data: \[DONE\]' marker=twenty
        if [ "${API[$t]:-chat}" = messages ]; then end='^event: message_stop'; fi
        # the last content chunk of short.sse and long.sse
        if [ "$mode" = short ]; then marker=' sweet\.'; fi
        if [ "$mode" = long ]; then marker=' tok-last\.'; fi
        grep -q "$marker" "$out" && grep -q "$end" "$out" ||
            die "$t ($mode): the upstream's events are missing: $(head -c 500 "$out")"
        if [ "$mode" = long ]; then # and every content chunk before it, one event each
            [ "$(grep -c '(tok [0-9][0-9][0-9])' "$out")" = "$LONG_CHUNKS" ] ||
                die "$t (long): $(grep -c '(tok [0-9][0-9][0-9])' "$out") of the $LONG_CHUNKS numbered chunks"
        fi
        if [ "$t" = switchyard ] || [ "$t" = switchyard-log ]; then
            head -1 "$out" | grep -q '"type":"trace"' || die "$t ($mode): first event is not the trace"
        fi
        if [ "$t" = translated ]; then
            head -1 "$out" | grep -q '^event: ping' || die "translated ($mode): first event is not the trace ping"
        fi
    else
        grep -q 'fixed reply from the static benchmark upstream' "$out" ||
            die "$t (plain): the upstream's content is missing: $(head -c 500 "$out")"
    fi
    EXPECT_BYTES[$t.$mode]=$(stat -c %s "$out")
}
log "check: every target answers plain and streamed completions with the upstream's content"
cmp -s <(curl -sS -X POST "${URL[direct]}") "$ROOT/bench/nginx/chat.json" ||
    die "nginx upstream does not serve bench/nginx/chat.json byte for byte"
cmp -s <(curl -sS -X POST "http://127.0.0.1:$UP_PORT/v1/stream/chat/completions") "$ROOT/bench/nginx/stream.sse" ||
    die "nginx upstream does not serve bench/nginx/stream.sse byte for byte"
for mode in "${SHAPES[@]}"; do
    cmp -s <(curl -sS -X POST "$(url_of direct "$mode")") "$ROOT/bench/nginx/$mode.sse" ||
        die "nginx upstream does not serve bench/nginx/$mode.sse byte for byte"
done
LONG_CHUNKS=$(grep -c '(tok [0-9][0-9][0-9])' "$ROOT/bench/nginx/long.sse")
for t in "${TARGETS[@]}"; do
    check "$t" stream "${PACED_URL[$t]}" "${PACED_MODEL[$t]}"
    for mode in plain stream; do check "$t" "$mode" "${URL[$t]}" "${MODEL[$t]}"; done
done
for t in "${SHAPE_TARGETS[@]}"; do
    for mode in "${SHAPES[@]}"; do check "$t" "$mode" "$(url_of "$t" "$mode")" "$(model_of "$t" "$mode")"; done
done
SY_RSS_IDLE=$(python3 "$LIB/procstat.py" rss "$SY_PID")

for t in "${TARGETS[@]}"; do
    for mode in plain stream "${SHAPES[@]}"; do
        [ -z "${SHAPE_URL[$t.$mode]:-}" ] && [ "$mode" != plain ] && [ "$mode" != stream ] && continue
        {
            echo 'wrk.method = "POST"'
            echo "wrk.body = [[$(body "$(model_of "$t" "$mode")" "$mode" "${API[$t]:-chat}")]]"
            headers "$mode" | while IFS=': ' read -r k v; do echo "wrk.headers[\"$k\"] = \"$v\""; done
        } >"$RUN/lua/$t.$mode.lua"
    done
done

# --- load runs -------------------------------------------------------------------------------
RECORDS=$RUN/records.jsonl
: >"$RECORDS"
# cpu_snapshot TARGET: "server-tree upstream-tree core-busy now" in microseconds, for CPU per request
# and for the noise: what other processes took from the servers' core during a run.
cpu_snapshot() {
    PYTHONPATH=$LIB python3 -c 'import sys, procstat as p
import time
print(p.cpu_us(int(sys.argv[1])), p.cpu_us(int(sys.argv[2])), p.core_busy_us(int(sys.argv[3])),
      time.monotonic_ns() // 1000)' \
        "${PID[$1]}" "$UP_PID" "$SERVER_CPU"
}
# cpu_fields TARGET BEFORE AFTER: record fields (KEY=VALUE words) from two snapshots
cpu_fields() {
    local s0 u0 c0 w0 s1 u1 c1 w1 up
    read -r s0 u0 c0 w0 <<<"$2"
    read -r s1 u1 c1 w1 <<<"$3"
    up=$((u1 - u0))
    if [ "$1" = direct ]; then up=0; fi
    echo "cpu_us=$((s1 - s0)) upstream_cpu_us=$up core_busy_us=$((c1 - c0)) wall_us=$((w1 - w0))"
}
alive() { kill -0 "${PID[$1]}" 2>/dev/null || die "$1 (pid ${PID[$1]}) died during the run; logs in $RUN"; }

# record TOOL RAW KEY=VALUE...: parse a run, append it, and say at once if it had errors.
record() {
    local line
    line=$(python3 "$LIB/parse.py" "$@") || die "cannot parse $2"
    echo "$line" >>"$RECORDS"
    python3 - "$line" <<'EOF' >&2
import json, sys
r = json.loads(sys.argv[1])
if r["errors"] or r["requests"] == 0:
    print(f"  !! {r['target']} {r['mode']} {r['kind']}: {r['errors']} errors in {r['requests']} requests ({r['raw']})")
EOF
}

# closed TARGET MODE ROUND KIND CONNECTIONS SECONDS: wrk, closed loop, with CPU accounting.
closed() {
    local t=$1 mode=$2 r=$3 kind=$4 c=$5 d=$6 raw=$RUN/raw/r$3.$2.$1.$4.txt cpu0 cpu1 rss=0 rss_pid=""
    alive "$t"
    if [ "$t" = switchyard ] && [ "$kind" = closed ]; then
        on_load python3 "$LIB/procstat.py" rss-max "$SY_PID" "$d" >"$raw.rss" &
        rss_pid=$!
    fi
    cpu0=$(cpu_snapshot "$t")
    on_load wrk -t1 -c"$c" -d"${d}s" --latency --timeout 5s -s "$RUN/lua/$t.$mode.lua" "$(url_of "$t" "$mode")" >"$raw" 2>&1 ||
        die "wrk failed on $t: $(tail -5 "$raw")"
    cpu1=$(cpu_snapshot "$t")
    if [ -n "$rss_pid" ]; then wait "$rss_pid"; rss=$(cat "$raw.rss"); fi
    alive "$t"
    # shellcheck disable=SC2046 # cpu_fields prints KEY=VALUE words
    record wrk "$raw" round="$r" mode="$mode" target="$t" kind="$kind" $(cpu_fields "$t" "$cpu0" "$cpu1") \
        rss_max_kib="$rss" expect_bytes="${EXPECT_BYTES[$t.$mode]}"
}

# open TARGET MODE ROUND KIND RATE: fixed-rate open loop, latency from the scheduled send times.
open_loop() {
    local t=$1 mode=$2 r=$3 kind=$4 rate=$5 raw=$RUN/raw/r$3.$2.$1.$4.txt cpu0 cpu1
    local -a hargs
    alive "$t"
    cpu0=$(cpu_snapshot "$t")
    if [ "$OPEN_LOOP" = oha ]; then
        mapfile -d '' hargs < <(header_args -H "$mode")
        on_load oha --no-tui --output-format json -z "${RATE_DURATION}s" -q "$rate" --latency-correction \
            -w -c "$RATE_CONNS" -t 5s -m POST "${hargs[@]}" -d "$(body "${MODEL[$t]}" "$mode")" "${URL[$t]}" \
            >"$raw" 2>"$raw.err" || die "oha failed on $t: $(tail -5 "$raw.err")"
    else
        on_load wrk2 -t1 -c"$RATE_CONNS" -d"${RATE_DURATION}s" -R"$rate" --latency \
            -s "$RUN/lua/$t.$mode.lua" "${URL[$t]}" >"$raw" 2>&1 || die "wrk2 failed on $t: $(tail -5 "$raw")"
    fi
    cpu1=$(cpu_snapshot "$t")
    alive "$t"
    # shellcheck disable=SC2046
    record "$OPEN_LOOP" "$raw" round="$r" mode="$mode" target="$t" kind="$kind" rate="$rate" \
        $(cpu_fields "$t" "$cpu0" "$cpu1") expect_bytes="${EXPECT_BYTES[$t.$mode]}"
}

# probe TARGET ROUND KIND URL MODEL COUNT WARMUP: switchyard bench, sequential streams (one in
# flight), timing the first content event and the gaps between content events; the first 0.2 s
# of streams warm up and are not measured.
probe() {
    local t=$1 out=$RUN/raw/r$2.stream.$1.$3.json
    alive "$t"
    on_load "$SWITCHYARD_BIN" bench --url "$4" --model "$5" --stream --concurrency 1 --requests "$6" \
        --warmup 0.2 --prompt-tokens 8 --max-tokens 256 --token "$TOKEN" --quiet --json "$out.bench" \
        >"$out.txt" 2>&1 || die "switchyard bench failed on $t: $(tail -3 "$out.txt")"
    python3 "$LIB/bench_probe.py" "$out.bench" >"$out" || die "cannot read $out.bench"
    python3 - "$out" "$2" "$t" "$3" >>"$RECORDS" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r.update(round=int(sys.argv[2]), mode="stream", target=sys.argv[3], kind=sys.argv[4], raw=sys.argv[1])
print(json.dumps(r))
if r["errors"]:
    print(f"  !! {sys.argv[3]} {sys.argv[4]}: {r['errors']} bad streams: {r['first_error']}", file=sys.stderr)
EOF
}

# paired TARGET MODE ROUND: c=1 latency of TARGET and direct, request by request alternately.
paired() {
    local t=$1 mode=$2 out=$RUN/raw/r$3.$2.$1.paired.json expect
    local -a hargs
    mapfile -d '' hargs < <(header_args --header "$mode")
    expect='fixed reply from the static benchmark upstream'
    if [ "$mode" = stream ]; then expect='data: [DONE]'; fi
    alive "$t"
    on_load python3 "$LIB/paired_probe.py" --base-url "${URL[direct]}" --base-body "$(body "${MODEL[direct]}" "$mode")" \
        --url "${URL[$t]}" --body "$(body "${MODEL[$t]}" "$mode")" "${hargs[@]}" --count "$PAIRED_COUNT" \
        --seconds "$PAIRED_SECONDS" --expect "$expect" >"$out" || die "paired_probe failed on $t"
    python3 - "$out" "$3" "$mode" "$t" >>"$RECORDS" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r.update(round=int(sys.argv[2]), mode=sys.argv[3], target=sys.argv[4], kind="paired", raw=sys.argv[1])
print(json.dumps(r))
if r["errors"]:
    print(f"  !! {sys.argv[4]} {sys.argv[3]} paired: {r['errors']} errors: {r['first_error']}", file=sys.stderr)
EOF
}

nginx_rps() { # nginx_rps ROUND MODE: nginx proxy's closed-loop max this round
    python3 - "$RECORDS" "$1" "$2" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if (r.get("round"), r.get("mode"), r.get("target"), r.get("kind")) == (int(sys.argv[2]), sys.argv[3], "nginx", "closed"):
        print(int(r["rps"]))
EOF
}

# (--quick: not for the short and long streams, whose runs are short anyway; the checks opened
# their paths)
WARM_MODES=(plain stream)
if [ "$QUICK" = 0 ]; then WARM_MODES+=("${SHAPES[@]}"); fi
log "warm-up: 1 s per target and mode (${WARM_MODES[*]})"
for t in "${TARGETS[@]}"; do
    for mode in "${WARM_MODES[@]}"; do
        [ -f "$RUN/lua/$t.$mode.lua" ] || continue
        on_load wrk -t1 -c"$CONNS" -d1s -s "$RUN/lua/$t.$mode.lua" "$(url_of "$t" "$mode")" \
            >"$RUN/raw/warmup.$t.$mode.txt" 2>&1 || die "warm-up wrk failed on $t ($mode)"
    done
done

# The driver itself: switchyard bench and wrk against the static nginx upstream, one core
# (LOAD_CPU) each, closed loop with the same connections and duration, back to back.
log "driver: switchyard bench vs wrk against the static upstream (-c$CONNS, ${DURATION}s each, one core)"
for r in $(seq 1 "$ROUNDS"); do
    raw=$RUN/raw/r$r.driver.wrk.txt
    on_load wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$RUN/lua/direct.plain.lua" "${URL[direct]}" >"$raw" 2>&1 ||
        die "wrk failed on the driver row: $(tail -5 "$raw")"
    record wrk "$raw" round="$r" mode=plain target=direct kind=driver_wrk
    raw=$RUN/raw/r$r.driver.bench.json
    on_load "$SWITCHYARD_BIN" bench --url "${URL[direct]}" --model bench-model --concurrency "$CONNS" \
        --duration "$DURATION" --warmup 1 --prompt-tokens 8 --token "$TOKEN" --quiet --json "$raw" \
        >"$raw.txt" 2>&1 || die "switchyard bench failed on the driver row: $(tail -3 "$raw.txt")"
    python3 - "$raw" "$r" >>"$RECORDS" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["result"]
print(json.dumps({"round": int(sys.argv[2]), "mode": "plain", "target": "direct", "kind": "driver_bench",
                  "requests": r["requests"], "rps": r["requests_per_s"], "errors": r["errors"],
                  "p50_us": r["e2e_ms"]["p50"] * 1000, "p99_us": r["e2e_ms"]["p99"] * 1000, "raw": sys.argv[1]}))
EOF
done

for r in $(seq 1 "$ROUNDS"); do
    # rotate the order each round so no target always runs first or last
    order=("${TARGETS[@]:$(((r - 1) % ${#TARGETS[@]}))}" "${TARGETS[@]:0:$(((r - 1) % ${#TARGETS[@]}))}")
    for mode in plain stream; do
        log "round $r/$ROUNDS $mode: closed loop (wrk -c$CONNS, ${DURATION}s) on ${order[*]}"
        for t in "${order[@]}"; do closed "$t" "$mode" "$r" closed "$CONNS" "$DURATION"; done
        log "round $r/$ROUNDS $mode: concurrency 1 (wrk -c1, ${C1_DURATION}s)"
        for t in "${order[@]}"; do closed "$t" "$mode" "$r" c1 1 "$C1_DURATION"; done
        log "round $r/$ROUNDS $mode: concurrency 1, paired with direct (up to $PAIRED_COUNT pairs or ${PAIRED_SECONDS}s)"
        for t in "${order[@]}"; do
            if [ "$t" != direct ] && ! closed_only "$t"; then paired "$t" "$mode" "$r"; fi
        done
        if [ "$OPEN_LOOP" != none ]; then
            max=$(nginx_rps "$r" "$mode")
            log "round $r/$ROUNDS $mode: fixed rates $((max / 2)) and $((max * 4 / 5)) req/s ($OPEN_LOOP, ${RATE_DURATION}s)"
            for t in "${order[@]}"; do
                closed_only "$t" && continue
                open_loop "$t" "$mode" "$r" rate50 $((max / 2))
                open_loop "$t" "$mode" "$r" rate80 $((max * 4 / 5))
            done
        fi
    done
    shape_order=()
    for t in "${order[@]}"; do if [ -n "${SHAPE_URL[$t.short]:-}" ]; then shape_order+=("$t"); fi; done
    for mode in "${SHAPES[@]}"; do
        log "round $r/$ROUNDS $mode streams: closed loop (wrk -c$CONNS, ${SHAPE_DURATION}s) on ${shape_order[*]}"
        for t in "${shape_order[@]}"; do closed "$t" "$mode" "$r" closed "$CONNS" "$SHAPE_DURATION"; done
    done
    log "round $r/$ROUNDS: SSE probes (TTFB: $PROBE_COUNT streams; gaps: $GAP_COUNT paced streams)"
    for t in "${order[@]}"; do
        closed_only "$t" && continue
        probe "$t" "$r" ttfb "${URL[$t]}" "${MODEL[$t]}" "$PROBE_COUNT" 10
        probe "$t" "$r" gaps "${PACED_URL[$t]}" "${PACED_MODEL[$t]}" "$GAP_COUNT" 2
    done
done

SY_RSS_AFTER=$(python3 "$LIB/procstat.py" rss "$SY_PID")
log "idle connections: $IDLE_CONNS keep-alive connections per gateway"
for t in "${TARGETS[@]}"; do
    [ "$t" = direct ] && continue
    closed_only "$t" && continue
    mapfile -d '' hargs < <(header_args --header plain)
    on_load python3 "$LIB/idle_conns.py" --url "${URL[$t]}" --body "$(body "${MODEL[$t]}" plain)" \
        "${hargs[@]}" --pid "${PID[$t]}" --count "$IDLE_CONNS" >"$RUN/raw/idle.$t.json" ||
        die "idle_conns failed on $t"
    alive "$t"
    python3 - "$RUN/raw/idle.$t.json" "$t" >>"$RECORDS" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r.update(target=sys.argv[2], kind="idle_conns", mode="plain", round=0)
print(json.dumps(r))
EOF
done
# after the idle connections are closed, the gateway still answers
check switchyard plain "${URL[switchyard]}" bench-model

# --- report ----------------------------------------------------------------------------------
python3 - "$RUN/meta.json" <<EOF
import json, platform, subprocess, sys
def out(cmd):
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except Exception as e:
        return f"unknown ({e})"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
json.dump({
    "quick": $QUICK, "rounds": $ROUNDS, "duration_s": $DURATION, "c1_duration_s": $C1_DURATION,
    "shape_duration_s": $SHAPE_DURATION,
    "shapes": {m: {"events": open(f"$ROOT/bench/nginx/{m}.sse").read().count("data: "),
                   "bytes": len(open(f"$ROOT/bench/nginx/{m}.sse", "rb").read())} for m in ("stream", "short", "long")},
    "rate_duration_s": $RATE_DURATION, "conns": $CONNS, "rate_conns": $RATE_CONNS,
    "probe_count": $PROBE_COUNT, "paired_count": $PAIRED_COUNT, "paired_seconds": $PAIRED_SECONDS, "gap_count": $GAP_COUNT, "paced_gap_ms": $PACED_GAP_MS,
    "idle_conns": $IDLE_CONNS, "server_cpu": "$SERVER_CPU", "load_cpu": "$LOAD_CPU",
    "open_loop": "$OPEN_LOOP",
    "open_loop_version": out("$OPEN_LOOP --version") if "$OPEN_LOOP" != "none" else None,
    "wrk": out("wrk -v 2>&1 | head -1"), "nginx": out("nginx -v"),
    "peer": "$PEER_NAME", "peer_version": "$PEER_VERSION",
    "switchyard": out("cd '$ROOT' && git describe --always --dirty 2>/dev/null || echo unknown"),
    "switchyard_bin": "$SWITCHYARD_BIN",
    "rss_idle_kib": $SY_RSS_IDLE, "rss_idle_after_load_kib": $SY_RSS_AFTER,
    "kernel": platform.release(), "cpu": cpu, "nproc": $(nproc),
    "loadavg_start": "$LOADAVG_START", "loadavg_end": open("/proc/loadavg").read().split()[:3],
    "run_dir": "$RUN", "wall_s": $(($(date +%s) - START)),
}, open(sys.argv[1], "w"), indent=1)
EOF
mkdir -p "$ROOT/bench/results"
python3 "$LIB/report.py" "$RUN" "$ROOT/bench/results/latest"
log "done in $(($(date +%s) - START)) s; raw outputs in $RUN"
