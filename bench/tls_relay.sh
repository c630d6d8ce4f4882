#!/usr/bin/env bash
# Gateway CPU per streamed MB, upstream over plain HTTP vs TLS, measured in the same run.
#
#   bash bench/tls_relay.sh [MB_PER_REQUEST] [REQUESTS_PER_ROUND] [ROUNDS]
#
# nginx serves one large SSE body (events of ~230 bytes) both on a plain port and on a TLS 1.3
# port with a certificate made here; switchyard (1 worker, release build) relays it to curl.
# Rounds alternate plain and TLS; the report gives the gateway's utime+stime per MB relayed
# (median of rounds) and the TLS/plain ratio. This is what decides whether kernel TLS plus
# splice would pay: it could only remove the decryption and the user-space copies.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-16}
REQS=${2:-8}
ROUNDS=${3:-3}

command -v nginx >/dev/null || apt-get install -y -q nginx >/dev/null
command -v openssl >/dev/null || apt-get install -y -q openssl >/dev/null
cargo build --release -q

dir=$(mktemp -d /tmp/switchyard-tls-relay.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_PLAIN=$(free_port); P_TLS=$(free_port); P_GW=$(free_port)

# A CA and a leaf for localhost.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 1 \
  -subj "/CN=bench-ca" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$dir/leaf.key" -out "$dir/leaf.csr" -subj "/CN=localhost" 2>/dev/null
printf "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" > "$dir/ext"
openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -out "$dir/leaf.pem" -days 1 -extfile "$dir/ext" 2>/dev/null

# The body: MB megabytes of OpenAI chunk events, then [DONE].
chmod 755 "$dir"
mkdir -p "$dir/www/v1/chat"
python3 - "$dir/www/v1/chat/completions" "$MB" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
ev = ('data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1,"model":"m",'
      '"choices":[{"index":0,"delta":{"content":" word"},"finish_reason":null}]}\n\n').encode()
n = mb * 1024 * 1024 // len(ev)
with open(path, "wb") as f:
    f.write(ev * n + b"data: [DONE]\n\n")
PY
chmod -R a+rX "$dir/www"
BYTES=$(stat -c %s "$dir/www/v1/chat/completions")

mkdir -p "$dir/tmp"
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx.err warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    types { }
    default_type text/event-stream;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$P_PLAIN;
        root $dir/www;
        location / { error_page 405 =200 \$uri; }
    }
    server {
        listen 127.0.0.1:$P_TLS ssl;
        ssl_certificate $dir/leaf.pem;
        ssl_certificate_key $dir/leaf.key;
        ssl_protocols TLSv1.3;
        root $dir/www;
        location / { error_page 405 =200 \$uri; }
    }
}
CONF
nginx -c "$dir/nginx.conf" &
pids+=($!)

cat > "$dir/gw.toml" <<CONF
[server]
listen = "127.0.0.1:$P_GW"
admin_listen = ""
workers = 1
max_upstream_body_bytes = 1073741824
[[providers]]
id = "plain"
kind = "openai"
base_url = "http://localhost:$P_PLAIN/v1"
api_key_env = "BENCH_KEY"
[[providers]]
id = "tls"
kind = "openai"
base_url = "https://localhost:$P_TLS/v1"
ca_file = "$dir/ca.pem"
api_key_env = "BENCH_KEY"
[[models]]
id = "m-plain"
provider = "plain"
[[models]]
id = "m-tls"
provider = "tls"
[[projects]]
slug = "bench"
tokens = ["sk-lr-bench"]
models = ["m-plain", "m-tls"]
policies = []
CONF
BENCH_KEY=k SWITCHYARD_LOG=warn taskset -c 0 target/release/switchyard serve --config "$dir/gw.toml" > "$dir/gw.out" 2> "$dir/gw.err" &
GW=$!
pids+=($GW)
for _ in $(seq 1 200); do grep -q "listening on" "$dir/gw.out" 2>/dev/null && break; sleep 0.05; done
grep -q "listening on" "$dir/gw.out" || { echo "gateway did not start"; cat "$dir/gw.err"; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$GW/stat"; }
TCK=$(getconf CLK_TCK)
run() { # model -> "cpu_ms_per_MB MB_per_s"
  local model=$1 t0 t1 c0 c1 got
  c0=$(cpu_ticks); t0=$(date +%s.%N)
  for _ in $(seq 1 "$REQS"); do
    got=$(taskset -c 1 curl -s -N -o /dev/null -w '%{size_download}' "http://127.0.0.1:$P_GW/v1/chat/completions" \
      -H 'authorization: Bearer sk-lr-bench' -H 'x-routerly-trace: off' \
      -d "{\"model\":\"$model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}")
    [ "$got" -ge "$BYTES" ] || { echo "short response for $model: $got of $BYTES bytes" >&2; cat "$dir/gw.err" >&2; exit 1; }
  done
  t1=$(date +%s.%N); c1=$(cpu_ticks)
  python3 -c "mb=$REQS*$BYTES/1048576; print(f'{($c1-$c0)*1000/$TCK/mb:.3f} {mb/($t1-$t0):.1f}')"
}
run m-plain >/dev/null; run m-tls >/dev/null   # warm: connections pooled, TLS session up
plain=(); tls=()
for r in $(seq 1 "$ROUNDS"); do
  plain+=("$(run m-plain)"); tls+=("$(run m-tls)")
done
python3 - "$MB" "$REQS" "$ROUNDS" "${plain[@]}" "${tls[@]}" <<'PY'
import sys, statistics as st
mb, reqs, rounds = sys.argv[1:4]
vals = sys.argv[4:]
n = int(rounds)
plain = [tuple(map(float, v.split())) for v in vals[:n]]
tls = [tuple(map(float, v.split())) for v in vals[n:]]
pc = st.median(c for c, _ in plain); tc = st.median(c for c, _ in tls)
pt = st.median(t for _, t in plain); tt = st.median(t for _, t in tls)
print(f"TLS relay: {reqs} x {mb} MiB SSE per round, {rounds} rounds, 1 worker, medians")
print(f"  plain upstream: {pc:7.3f} gateway CPU ms per MiB   {pt:8.1f} MiB/s")
print(f"  TLS upstream:   {tc:7.3f} gateway CPU ms per MiB   {tt:8.1f} MiB/s")
print(f"  TLS/plain CPU per MiB: {tc/pc if pc else float('nan'):.2f}x   throughput: {tt/pt if pt else float('nan'):.2f}x")
PY
