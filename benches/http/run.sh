#!/usr/bin/env bash
# The HTTP gateway against the binary protocol and against nginx, in the same run, on one
# single node over loopback: 1000 objects of 64 KiB, 50 connections.
#   gateway GET   wrk -t2 -c50 rotating over /bench/o/00000..00999
#   nginx GET     the same 1000 files served by nginx (sendfile, keep-alive, 2 workers)
#   binary GET    ringblob-bench remote --workload gets, 64 KiB, 1000 keys, 50 connections
#   gateway PUT   wrk -t2 -c50, a fixed 64 KiB body, rotating over the same names
#   binary PUT    ringblob-bench remote --workload puts, 64 KiB, 1000 keys, 50 connections
# Puts use the node's default durability (batch) on both faces. Prints one JSON object:
# requests/s, payload MB/s (requests/s x 65536 / 1e6), p50/p99 latency (µs) and the node's
# CPU µs per request for each, the node's RSS after the GET runs, and the ratios
# gateway_get_vs_binary, gateway_get_vs_nginx, gateway_put_vs_binary (requests/s).
#
# ringblob-bench counts requests, not time: each binary run is sized from a short pilot run
# (its rate x DURATION). Needs a release build (cargo build --release -p ringblob-tools);
# installs nginx, wrk (and curl) with apt-get when missing.
#
# The three GET faces are measured in ROUNDS rounds (default 3), their order turned each
# round; each ratio is taken within a round and the median round's is reported (every
# round's are in the JSON too), so a swing of the VM between two measurements does not
# decide the ratio.
#
# Usage: DURATION=15 ROUNDS=3 benches/http/run.sh     (seconds per measurement, default 15)
set -euo pipefail
DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-3}
CONNS=50 THREADS=2 N=1000 SIZE=65536
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$ROOT/target/release

[[ -x $BIN/ringblob-node && -x $BIN/ringblob && -x $BIN/ringblob-bench ]] || {
    echo "build first: cargo build --release -p ringblob-tools" >&2
    exit 2
}
missing=()
for p in nginx wrk curl; do command -v "$p" >/dev/null || missing+=("$p"); done
if ((${#missing[@]})); then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

WORK=$(mktemp -d /tmp/ringblob-http-bench.XXXXXX)
chmod 755 "$WORK" # nginx's workers read the document root
NODE= NGINX=
cleanup() {
    if [[ -n $NGINX ]]; then kill -QUIT "$NGINX" 2>/dev/null || true; wait "$NGINX" 2>/dev/null || true; fi
    if [[ -n $NODE ]]; then kill -TERM "$NODE" 2>/dev/null || true; wait "$NODE" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RB_PORT=$(free_port) HTTP_PORT=$(free_port) NGINX_PORT=$(free_port)
RB=127.0.0.1:$RB_PORT GW=http://127.0.0.1:$HTTP_PORT NX=http://127.0.0.1:$NGINX_PORT
log() { echo "[$(date +%T)] $*" >&2; }

# --- the node ---------------------------------------------------------------------------
# The puts overwrite the same 1000 names (GB per run): defragmentation every 2 s of sealed
# 64 MiB blobs, unthrottled (and on demand after each put run), keeps the data dir small, and a 1 GiB reserve keeps the disk
# from filling if it does not keep up (writes would fail NO_SPACE: counted as errors).
cat >"$WORK/node.toml" <<EOF
[blob]
defrag_mb_per_sec = 0
defrag_interval_secs = 2
max_blob_size = 67108864
reserve_mb = 1024
EOF
"$BIN/ringblob-node" --config "$WORK/node.toml" --data-dir "$WORK/data" --listen "$RB" \
    --http-listen "127.0.0.1:$HTTP_PORT" --admin-listen off 2>"$WORK/node.log" &
NODE=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "$GW/" && break
    kill -0 "$NODE" 2>/dev/null || { cat "$WORK/node.log" >&2; exit 1; }
    sleep 0.1
done
curl -sf -o /dev/null "$GW/" || { echo "gateway not answering" >&2; cat "$WORK/node.log" >&2; exit 1; }

# --- the objects: 1000 x 64 KiB random, through the binary client and into nginx's root --
log "writing $N objects of $SIZE B"
mkdir -p "$WORK/www/bench/o"
for i in $(seq 0 $((N - 1))); do printf 'o/%05d\n' "$i"; done >"$WORK/names"
while read -r name; do
    head -c "$SIZE" /dev/urandom >"$WORK/www/bench/$name"
done <"$WORK/names"
RB="$RB" BIN="$BIN" WWW="$WORK/www/bench" xargs -P 4 -I{} sh -c \
    '"$BIN/ringblob" -q --remote "$RB" --namespace bench put "$1" "$WWW/$1" >/dev/null' _ {} \
    <"$WORK/names"
for name in o/00000 o/00500 o/00999; do # what the gateway serves is what was written
    curl -sf "$GW/bench/$name" | cmp -s - "$WORK/www/bench/$name" ||
        { echo "gateway GET /bench/$name differs from the file" >&2; exit 1; }
done
cp "$WORK/www/bench/o/00000" "$WORK/put-body"

# --- nginx --------------------------------------------------------------------------------
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
user root;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    types { }
    default_type application/octet-stream;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
    }
}
EOF
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
NGINX=$!
for _ in $(seq 50); do curl -sf -o /dev/null "$NX/bench/o/00000" && break; sleep 0.1; done
curl -sf "$NX/bench/o/00999" | cmp -s - "$WORK/www/bench/o/00999" ||
    { echo "nginx does not serve the files" >&2; cat "$WORK/nginx/error.log" >&2; exit 1; }

# --- wrk scripts ----------------------------------------------------------------------------
# Each thread starts at its own offset of the 1000 names; done() prints one line
# "WRKJSON {...}" (latencies in µs).
cat >"$WORK/wrk.lua" <<'EOF'
local threads = 0
function setup(thread)
    thread:set("tid", threads)
    threads = threads + 1
end
function init(args)
    n = (tonumber(tid) or 0) * 500
    method = os.getenv("WRK_METHOD") or "GET"
    if method == "PUT" then
        local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
        body = f:read("*a")
        f:close()
        headers = { ["Content-Type"] = "application/octet-stream" }
    end
end
function request()
    local path = string.format("/bench/o/%05d", n % 1000)
    n = n + 1
    return wrk.format(method, path, headers, body)
end
function done(s, latency, requests)
    local e = s.errors
    io.write(string.format(
        'WRKJSON {"requests":%d,"duration_us":%d,"bytes_read":%d,"p50_us":%d,"p99_us":%d,' ..
        '"max_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
        s.requests, s.duration, s.bytes, latency:percentile(50), latency:percentile(99),
        latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
EOF

CLK_TCK=$(getconf CLK_TCK)
node_cpu() { awk -v t="$CLK_TCK" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$NODE/stat"; }
node_rss_kib() { ps -o rss= -p "$NODE" | tr -d ' '; }

# wrk_run LABEL METHOD URL -> $WORK/LABEL.json
wrk_run() {
    local label=$1 method=$2 url=$3 c0 c1
    log "$label: wrk $method $url, ${DURATION}s"
    c0=$(node_cpu)
    WRK_METHOD=$method WRK_BODY=$WORK/put-body \
        wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "$WORK/wrk.lua" "$url" >"$WORK/$label.out" 2>&1
    c1=$(node_cpu)
    grep -E 'Non-2xx|Socket errors' "$WORK/$label.out" >&2 || true
    python3 - "$label" "$SIZE" "$c0" "$c1" "$WORK/$label.out" >"$WORK/$label.json" <<'EOF'
import json, sys
label, size, c0, c1, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
text = open(out).read()
w = json.loads(next(l for l in text.splitlines() if l.startswith("WRKJSON "))[8:])
rps = w["requests"] / (w["duration_us"] / 1e6)
row = {"tool": "wrk", "requests": w["requests"], "seconds": round(w["duration_us"] / 1e6, 2),
       "req_per_sec": round(rps, 1), "mb_per_sec": round(rps * size / 1e6, 1),
       "wire_read_mb_per_sec": round(w["bytes_read"] / w["duration_us"], 1),
       "p50_us": w["p50_us"], "p99_us": w["p99_us"], "max_us": w["max_us"], "errors": w["errors"]}
if not label.startswith("nginx"):
    row["node_cpu_us_per_req"] = round((c1 - c0) * 1e6 / max(w["requests"], 1), 1)
print(json.dumps(row))
EOF
}

defrag() { # reclaim the overwritten values now (the puts overwrite the same 1000 names)
    local err tries=0 # the scheduled one may be running: BUSY, try again
    until err=$("$BIN/ringblob" -q --remote "$RB" --timeout 600 defrag --wait 2>&1 >/dev/null); do
        [[ $err == *BUSY* && $((tries += 1)) -lt 100 ]] || { echo "$err" >&2; return 1; }
        sleep 0.2
    done
    log "defragmented: data dir $(du -sh "$WORK/data" | cut -f1), $(df -h --output=avail "$WORK" | tail -1 | tr -d " ") free"
}

# bench_run LABEL WORKLOAD -> $WORK/LABEL.json. A pilot of 10000 requests gives a rate; the
# run is rate x DURATION requests, re-sized from its own rate (up to twice) when it took
# under 0.67 or over 1.5 x DURATION.
bench_run() {
    local label=$1 workload=$2 row count=10000 tries=0
    local args=(remote --addr "$RB" --workload "$workload" --connections "$CONNS"
        --keys "$N" --value-size "$SIZE" --json)
    row=$("$BIN/ringblob-bench" "${args[@]}" --count "$count")
    while :; do
        read -r ok count < <(python3 -c 'import json,sys
b, d = json.loads(sys.argv[1]), float(sys.argv[2])
print(int(0.67 * d <= b["seconds"] <= 1.5 * d), max(1000, int(b["ops_per_sec"] * d)))' "$row" "$DURATION")
        ((ok || tries == 2)) && break
        tries=$((tries + 1))
        log "$label: ringblob-bench remote --workload $workload, $count requests"
        [[ $workload == puts ]] && defrag
        row=$("$BIN/ringblob-bench" "${args[@]}" --count "$count")
    done
    echo "$row" >"$WORK/$label.out"
    python3 - "$WORK/$label.out" >"$WORK/$label.json" <<'EOF'
import json, sys
b = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(json.dumps({"tool": "ringblob-bench", "requests": b["ops"], "seconds": round(b["seconds"], 2),
    "req_per_sec": round(b["ops_per_sec"], 1), "mb_per_sec": round(b["mb_per_sec"], 1),
    "p50_us": b["p50_us"], "p99_us": b["p99_us"], "errors": b["errors"],
    "node_cpu_us_per_req": None if b["node_cpu_us_per_op"] is None else round(b["node_cpu_us_per_op"], 1)}))
EOF
}

LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)
RSS_LOADED=$(node_rss_kib)
# The GET faces in ROUNDS rounds, their order turned each round, so that a swing of the VM
# (±30 % within minutes) weighs on every face alike; each ratio is taken within a round, and
# the median round's is reported.
for round in $(seq 1 "$ROUNDS"); do
    faces=(gateway nginx binary)
    for i in 0 1 2; do
        case ${faces[(i + round - 1) % 3]} in
        gateway) wrk_run "gateway_get_r$round" GET "$GW"; RSS_GW_GET=$(node_rss_kib) ;;
        nginx) wrk_run "nginx_get_r$round" GET "$NX" ;;
        binary) bench_run "binary_get_r$round" gets; RSS_BIN_GET=$(node_rss_kib) ;;
        esac
    done
done
wrk_run gateway_put PUT "$GW"
defrag
bench_run binary_put puts
defrag
RSS_END=$(node_rss_kib)
LOAD_END=$(cut -d" " -f1-3 /proc/loadavg)

python3 - "$WORK" "$DURATION" "$RSS_LOADED" "$RSS_GW_GET" "$RSS_BIN_GET" "$RSS_END" "$(nproc)" "$LOAD_START" "$LOAD_END" "$ROUNDS" <<'EOF'
import json, statistics, sys
work, duration, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[10])
load = lambda k: json.load(open(f"{work}/{k}.json"))
faces = ["gateway_get", "nginx_get", "binary_get"]
per_round = [{f: load(f"{f}_r{i}") for f in faces} for i in range(1, rounds + 1)]
ratio = lambda row, a, b: round(row[a]["req_per_sec"] / row[b]["req_per_sec"], 3)
vs_binary = [ratio(row, "gateway_get", "binary_get") for row in per_round]
vs_nginx = [ratio(row, "gateway_get", "nginx_get") for row in per_round]
# Each face's row: the round of the median gateway-vs-binary ratio.
median_round = sorted(range(rounds), key=lambda i: vs_binary[i])[rounds // 2]
r = dict(per_round[median_round])
r.update({k: load(k) for k in ["gateway_put", "binary_put"]})
rate = lambda k: r[k]["req_per_sec"]
out = {"objects": 1000, "value_size": 65536, "connections": 50, "wrk_threads": 2,
       "duration_s": duration, "rounds": rounds, "cpus": int(sys.argv[7]),
       "loadavg_start": sys.argv[8], "loadavg_end": sys.argv[9], **r,
       "node_rss_kib": {"loaded": int(sys.argv[3]), "after_gateway_get": int(sys.argv[4]),
                        "after_binary_get": int(sys.argv[5]), "end": int(sys.argv[6])},
       "get_req_per_sec_rounds": {f: [row[f]["req_per_sec"] for row in per_round] for f in faces},
       "gateway_get_vs_binary_rounds": vs_binary,
       "gateway_get_vs_nginx_rounds": vs_nginx,
       "gateway_get_vs_binary": statistics.median(vs_binary),
       "gateway_get_vs_nginx": statistics.median(vs_nginx),
       "gateway_put_vs_binary": round(rate("gateway_put") / rate("binary_put"), 3)}
print(json.dumps(out))
EOF
