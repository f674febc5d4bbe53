#!/usr/bin/env bash
# GETs on established TLS connections while other clients open TLS connections in a loop
# (a reconnect storm), against one node: the GET rate and latency quiet, then during the
# storm, and the storm's handshakes per second. Prints one JSON line per phase.
#
# The storm is Python's `ssl` (OpenSSL) doing the TLS handshake only and closing; the GETs
# are `ringblob-bench remote` (4 connections, pipeline 1, 1,000 keys of 100 B). Needs a
# release build, python3 and openssl.
#
# Usage: [NODE=path/to/ringblob-node] [LANES=n] [STORM_THREADS=2] [STORM_SECONDS=8]
#        benches/tls-handshake-storm.sh [gets]
set -euo pipefail
GETS=${1:-40000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
NODE_BIN=${NODE:-$BIN/ringblob-node}
PORT=17211
WORK=$(mktemp -d)
NODE_PID=
cleanup() {
    if [[ -n $NODE_PID ]]; then
        kill "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A CA and a certificate for 127.0.0.1 it signs.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=storm-ca -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout "$WORK/node.key" -out "$WORK/node.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$WORK/ext.cnf"
openssl x509 -req -in "$WORK/node.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 2 -extfile "$WORK/ext.cnf" -out "$WORK/node.pem" 2>/dev/null

config=()
if [[ -n ${LANES:-} ]]; then
    printf 'connection_lanes = %s\n' "$LANES" >"$WORK/node.toml"
    config=(--config "$WORK/node.toml")
fi
"$NODE_BIN" "${config[@]}" --data-dir "$WORK/data" --listen "127.0.0.1:$PORT" \
    --tls-cert "$WORK/node.pem" --tls-key "$WORK/node.key" 2>"$WORK/node.log" &
NODE_PID=$!
sleep 1

bench() { # WORKLOAD COUNT -> JSON line
    "$BIN/ringblob-bench" remote --addr "127.0.0.1:$PORT" --tls-ca "$WORK/ca.pem" \
        --connections 4 --pipeline 1 --keys 1000 --workload "$1" --count "$2" --json 2>/dev/null
}
phase() { # NAME (reads a bench JSON line on stdin)
    python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
print(json.dumps({"phase": sys.argv[1], "gets_per_sec": round(r["ops_per_sec"]),
                  "p50_us": r["p50_us"], "p99_us": r["p99_us"], "p999_us": r.get("p999_us")}))
' "$1"
}

bench puts 1000 >/dev/null
bench gets "$GETS" | phase quiet
python3 - "$PORT" "${STORM_SECONDS:-8}" "${STORM_THREADS:-2}" "$WORK/ca.pem" >"$WORK/storm.json" <<'EOF' &
import json, socket, ssl, sys, threading, time
port, secs, threads, ca = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
done = []
def storm():
    n, end = 0, time.time() + secs
    while time.time() < end:
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                             server_hostname="127.0.0.1"):
            n += 1
    done.append(n)
workers = [threading.Thread(target=storm) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(json.dumps({"phase": "storm", "threads": threads, "handshakes": sum(done),
                  "handshakes_per_sec": round(sum(done) / secs)}))
EOF
STORM=$!
sleep 0.3
bench gets "$GETS" | phase during-storm
wait "$STORM"
cat "$WORK/storm.json"
