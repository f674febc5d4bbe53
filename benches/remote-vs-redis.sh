#!/usr/bin/env bash
# ringblob-node vs Redis over loopback, in the same run: 50 connections, pipeline 1 and 16.
#   puts, durability none   vs SET on redis without persistence
#   puts, durability batch  vs SET on redis with AOF `appendfsync always` (both durable at
#                              acknowledgement)
#   gets (100 B and 64 KiB) vs GET on redis without persistence
# Prints one JSON line per measurement (with the servers' and the load generators' CPU µs
# per request) and the ratios ringblob / Redis with both sides' p50/p99 latency. Needs a
# release build and Debian's redis-server + redis-tools
# (`apt-get install -y redis-server redis-tools`).
#
# Usage: [CLIENT_THREADS=n] [NODE_CONFIG=node.toml] benches/remote-vs-redis.sh [count]
#   (default: 300000 requests; 1 load-generator thread; the node's default configuration)
set -euo pipefail
COUNT=${1:-300000}
# The load generator's threads: 1, as redis-benchmark (one thread by default), so both
# servers are driven by a load generator of the same shape on the same two cores.
CLIENT_THREADS=${CLIENT_THREADS:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d)
RB_PORT=17011 REDIS_PORT=17379
NODE=
cleanup() {
    [[ -n $NODE ]] && kill "$NODE" 2>/dev/null || true
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "needs redis-server and redis-benchmark (apt-get install -y redis-server redis-tools)" >&2
    exit 2
}
[[ -x $BIN/ringblob-node && -x $BIN/ringblob-bench ]] || {
    echo "build first: cargo build --release --workspace --bins" >&2
    exit 2
}

start_node() {
    [[ -n $NODE ]] && { kill "$NODE"; wait "$NODE" 2>/dev/null || true; }
    rm -rf "$WORK/data"
    "$BIN/ringblob-node" ${NODE_CONFIG:+--config "$NODE_CONFIG"} --data-dir "$WORK/data" \
        --listen "127.0.0.1:$RB_PORT" 2>"$WORK/node.log" &
    NODE=$!
    sleep 1
}
start_redis() { # extra redis-server flags
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    sleep 0.5
    rm -rf "$WORK/redis" && mkdir -p "$WORK/redis"
    redis-server --port "$REDIS_PORT" --dir "$WORK/redis" --save "" "$@" --daemonize yes >/dev/null
    sleep 1
}
# ringblob WORKLOAD PIPELINE DURABILITY SIZE COUNT KEYS -> JSON line
ringblob() {
    "$BIN/ringblob-bench" remote --addr "127.0.0.1:$RB_PORT" --workload "$1" --pipeline "$2" \
        --connections 50 --count "$5" --keys "$6" --durability "$3" --value-size "$4" --json \
        --client-threads "$CLIENT_THREADS"
}
redis_cpu() { # the server's CPU seconds so far (user + system)
    redis-cli -p "$REDIS_PORT" info cpu | tr -d '\r' |
        awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { print s }'
}
# redis TEST PIPELINE SIZE COUNT KEYS -> JSON line (ops/s, p50 and p99 in µs, the server's
# and redis-benchmark's CPU µs per request). GET runs after a SET pass over the same random
# keys, so it reads values that exist; its CPU figures are per request of both passes.
redis() {
    local out tests=$1 requests=$4 cpu0 cpu1 client
    [[ $1 == get ]] && tests=set,get requests=$(($4 * 2))
    cpu0=$(redis_cpu)
    out=$( { TIMEFORMAT='%U %S'; time redis-benchmark -p "$REDIS_PORT" -t "$tests" -d "$3" \
        -c 50 -n "$4" -P "$2" -r "$5" --csv; } 2>"$WORK/client.cpu")
    cpu1=$(redis_cpu)
    client=$(awk '{ print $1 + $2 }' "$WORK/client.cpu")
    python3 - "$1" "$2" "$3" "$out" "$cpu0" "$cpu1" "$client" "$requests" <<'EOF'
import csv, io, json, sys
test, p, size, out, cpu0, cpu1, client, requests = sys.argv[1:]
rows = list(csv.reader(io.StringIO(out)))
head = rows[0]
row = next(r for r in rows[1:] if r[0] == test.upper())
get = lambda name: float(row[head.index(name)])
per = lambda secs: float(secs) * 1e6 / int(requests)
print(json.dumps({"engine": "redis", "workload": test.upper(), "pipeline": int(p),
    "value_size": int(size), "ops_per_sec": get("rps"), "p50_us": get("p50_latency_ms") * 1000,
    "p99_us": get("p99_latency_ms") * 1000,
    "server_cpu_us_per_op": per(float(cpu1) - float(cpu0)),
    "client_cpu_us_per_op": per(client)}))
EOF
}
ratio() { # label ringblob-json redis-json
    python3 - "$@" <<'EOF'
import json, sys
label, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
cpu = a.get("node_cpu_us_per_op")
cpu = f"  CPU µs/req: node {cpu:.1f}" if cpu is not None else "  CPU µs/req:"
cpu += f" client {a.get('client_cpu_us_per_op', 0):.1f}"
cpu += f" | redis {b.get('server_cpu_us_per_op', 0):.1f} client {b.get('client_cpu_us_per_op', 0):.1f}"
print(f"{label:<34} {a['ops_per_sec']/b['ops_per_sec']:5.2f}x  "
      f"ringblob {a['ops_per_sec']:>9.0f}/s p50 {a['p50_us']:>6.0f} p99 {a['p99_us']:>6.0f} µs  "
      f"redis {b['ops_per_sec']:>9.0f}/s p50 {b['p50_us']:>6.0f} p99 {b['p99_us']:>6.0f} µs{cpu}")
EOF
}

declare -a SUMMARY
# Each pair starts from the same state: a fresh node (no earlier pair's data, sealing or
# defragmentation running) and an emptied redis.
run_pair() { # label rb-workload pipeline durability size redis-test [count keys]
    local a b count=${7:-$COUNT} keys=${8:-100000}
    start_node
    a=$(ringblob "$2" "$3" "$4" "$5" "$count" "$keys")
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    b=$(redis "$6" "$3" "$5" "$count" "$keys")
    echo "$a"
    echo "$b"
    SUMMARY+=("$(ratio "$1" "$a" "$b")")
}

start_redis --appendonly no
for P in 1 16; do
    run_pair "puts none, pipeline $P" puts "$P" none 100 set
    run_pair "gets 100 B, pipeline $P" gets "$P" none 100 get
    run_pair "gets 64 KiB, pipeline $P" gets "$P" none 65536 get $((COUNT / 3)) 10000
done
start_redis --appendonly yes --appendfsync always
for P in 1 16; do
    run_pair "puts batch vs AOF always, pipeline $P" puts "$P" batch 100 set
done
printf '%s\n' "${SUMMARY[@]}"
