#!/usr/bin/env bash
# ringblob-node vs Redis over loopback, in the same run: 100-byte values, 50 connections,
# pipeline 1 and 16, puts/SET and gets/GET. Prints one JSON line per measurement and the
# ratios ringblob / Redis. Needs a release build and Debian's redis-server + redis-tools
# (`apt-get install -y redis-server redis-tools`).
#
# Usage: benches/remote-vs-redis.sh [count] [durability]   (defaults: 300000, none)
set -euo pipefail
COUNT=${1:-300000}
DURABILITY=${2:-none}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release
WORK=$(mktemp -d)
RB_PORT=17011 REDIS_PORT=17379
cleanup() {
    kill "$NODE" 2>/dev/null || true
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

"$BIN/ringblob-node" --data-dir "$WORK/data" --listen "127.0.0.1:$RB_PORT" 2>"$WORK/node.log" &
NODE=$!
redis-server --port "$REDIS_PORT" --save "" --appendonly no --daemonize yes >/dev/null
sleep 1

declare -A RB REDIS
for P in 1 16; do
    for W in puts gets; do
        line=$("$BIN/ringblob-bench" remote --addr "127.0.0.1:$RB_PORT" --workload "$W" \
            --pipeline "$P" --connections 50 --count "$COUNT" --durability "$DURABILITY" --json)
        echo "$line"
        RB[$W-$P]=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ops_per_sec"])' "$line")
    done
    out=$(redis-benchmark -p "$REDIS_PORT" -t set,get -d 100 -c 50 -n "$COUNT" -P "$P" --csv)
    for T in SET GET; do
        rps=$(grep "^\"$T\"" <<<"$out" | cut -d, -f2 | tr -d '"')
        echo "{\"engine\":\"redis\",\"workload\":\"$T\",\"pipeline\":$P,\"ops_per_sec\":$rps}"
        REDIS[$T-$P]=$rps
    done
done
for P in 1 16; do
    python3 -c 'import sys; p,a,b,c,d=sys.argv[1:]; print(f"pipeline {p}: puts/SET {float(a)/float(b):.2f}x  gets/GET {float(c)/float(d):.2f}x")' \
        "$P" "${RB[puts-$P]}" "${REDIS[SET-$P]}" "${RB[gets-$P]}" "${REDIS[GET-$P]}"
done
