#!/usr/bin/env bash
# oauthd benchmark suite (issues 5, 11, 13, 15). One command: bench/run.sh [--quick]
#   [--only W1,W2,...,W1-TLS,...|TLS,W1-PG,...|PG,W1-PG2,...|PG2] [--conns N] [--codes N] [--perf]
# Builds the release server and the load generator, runs each workload against a fresh
# server on a fresh temporary database (loopback only), prints one table and writes
# bench/results/latest.json plus a timestamped copy. See bench/README.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

quick=0
only="W1,W2,W3,W4,W5,W6,TLS"
conns=16
codes=""
perf=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --only) only="${2:?--only needs a list, e.g. W1,W3}"; shift ;;
        --conns) conns="${2:?}"; shift ;;
        --codes) codes="${2:?}"; shift ;;
        --perf) perf=1 ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
only="${only^^}"
# W1-TLS ... W4-TLS: the same workloads over HTTPS; TLS stands for all four. W1-PG ...
# W3-PG: W1–W3 on PostgreSQL (PG: all three); W1-PG2 ... W3-PG2: two instances on one
# PostgreSQL database behind nginx (PG2: all three). Only named PG runs happen.
wants() {
    [[ ",$only," == *",$1,"* || ( "$1" == *-TLS && ",$only," == *,TLS,* ) \
        || ( "$1" == *-PG && ",$only," == *,PG,* ) || ( "$1" == *-PG2 && ",$only," == *,PG2,* ) ]]
}
wants_postgres() { [[ ",$only," == *-PG* || ",$only," == *,PG,* || ",$only," == *,PG2,* ]]; }

if [[ $quick == 1 ]]; then
    warmup=1; duration=3; w5_duration=5; codes="${codes:-3000}"; startup_runs=5
else
    warmup=2; duration=10; w5_duration=10; codes="${codes:-60000}"; startup_runs=10
fi

# --- tools ---------------------------------------------------------------------------
if ! command -v cargo >/dev/null; then
    echo "run.sh: cargo is required (install Rust with rustup)" >&2
    exit 1
fi
if [[ $perf == 1 ]] && ! command -v perf >/dev/null; then
    echo "== installing linux-perf (asked for by --perf)" >&2
    apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null
fi

echo "== building the release server and the load generator" >&2
if [[ -n "${OAUTHD_BENCH_SERVER:-}" ]]; then
    # A/B runs: measure this server binary instead of building the checkout's.
    echo "== server: $OAUTHD_BENCH_SERVER (OAUTHD_BENCH_SERVER)" >&2
else
    (cd "$root" && cargo build --release --quiet)
fi
(cd "$here" && cargo build --release --quiet)
oauthd="${OAUTHD_BENCH_SERVER:-$root/target/release/oauthd}"
# The PostgreSQL rows need a build with the `postgres` feature; it gets a target folder of
# its own so target/release/oauthd stays the default (SQLite-only) build measured above.
oauthd_pg=""
if wants_postgres; then
    if [[ -n "${OAUTHD_BENCH_PG_SERVER:-}" ]]; then
        oauthd_pg="$OAUTHD_BENCH_PG_SERVER"
    else
        echo "== building the release server with --features postgres (target/postgres)" >&2
        (cd "$root" && CARGO_TARGET_DIR="$root/target/postgres" cargo build --release --quiet --features postgres)
        oauthd_pg="$root/target/postgres/release/oauthd"
    fi
fi
release_bin="$oauthd"
gen="$here/target/release/oauthd-bench"
if [[ $perf == 1 ]]; then
    # The release binary is stripped: profile a copy of the same release build with
    # symbols and frame pointers (the server's code and Cargo.toml are untouched).
    echo "== building a symbolised release server for perf (bench/target/oauthd-prof)" >&2
    (cd "$root" && CARGO_TARGET_DIR="$here/target/oauthd-prof" \
        RUSTFLAGS="-C force-frame-pointers=yes" CARGO_PROFILE_RELEASE_STRIP=false \
        CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --quiet)
    oauthd="$here/target/oauthd-prof/release/oauthd"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/oauthd-bench.XXXXXX")"
server_pid=""
# With two instances (PG2): the second server and nginx in front of both.
server2_pid=""
nginx_pid=""
pg_data=""
cleanup() {
    for pid in "$nginx_pid" "$server2_pid" "$server_pid"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    [[ -n "$pg_data" ]] && pg_as "$pg_bin/pg_ctl" --pgdata "$pg_data" --mode immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

results="$work/results.jsonl"
: >"$results"
email="bench@example.com"
password="bench-password-1"
slow_email="slow@example.com"
redirect="http://127.0.0.1/cb"
fast=(--pbkdf2-iterations 1000)

# seed DB [--slow]: a user at 1000 PBKDF2 iterations, a confidential client "bench" and a
# public client "benchpub"; with --slow also a user at the default (600000) iterations.
# Prints the confidential client's secret.
seed() {
    local db="$1" slow="${2:-}"
    printf '%s\n' "$password" | "$oauthd" --db "$db" "${fast[@]}" user add "$email" --password-stdin >/dev/null
    if [[ "$slow" == --slow ]]; then
        printf '%s\n' "$password" | "$oauthd" --db "$db" user add "$slow_email" --password-stdin >/dev/null
    fi
    "$oauthd" --db "$db" client add --name "Bench Public" --id benchpub --redirect-uri "$redirect" --public --json >/dev/null
    "$oauthd" --db "$db" client add --name "Bench" --id bench --redirect-uri "$redirect" --json \
        | sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p'
}

# --- PostgreSQL ---------------------------------------------------------------------------
# A throwaway cluster in the temporary folder with PostgreSQL's default durability (fsync,
# synchronous_commit=on), on a free loopback port, run as `postgres` when this is root.
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
pg_port=""
pg_as() { if [[ $EUID == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_start() {
    [[ -n "$pg_port" ]] && return 0
    if [[ -z "$pg_bin" ]]; then
        echo "run.sh: the PG rows need PostgreSQL (apt-get install postgresql)" >&2
        exit 1
    fi
    mkdir -p "$work/pg"
    [[ $EUID == 0 ]] && chown postgres: "$work/pg" && chmod 755 "$work"
    pg_data="$work/pg/data"
    pg_as "$pg_bin/initdb" --pgdata "$pg_data" --username oauthd --auth trust \
        --encoding UTF8 --locale C.UTF-8 >/dev/null
    pg_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    pg_as "$pg_bin/pg_ctl" --pgdata "$pg_data" --log "$work/pg/log" --wait \
        --options "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1" start >/dev/null
}
# pg_database NAME: a new database; prints its URL.
pg_database() {
    pg_as "$pg_bin/psql" --no-psqlrc --quiet --host 127.0.0.1 --port "$pg_port" --username oauthd \
        --dbname postgres --command "CREATE DATABASE $1" >/dev/null
    echo "postgres://oauthd@127.0.0.1:$pg_port/$1"
}

# nginx_start ADDR1 ADDR2: nginx round-robin over both (keep-alive upstream connections);
# sets nginx_pid and addr.
nginx_start() {
    local dir="$work/nginx" port
    mkdir -p "$dir"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    cat >"$dir/nginx.conf" <<CONF
$([[ $EUID == 0 ]] && echo "user root;")
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream oauthd { server $1; server $2; keepalive 64; }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://oauthd;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
        }
    }
}
CONF
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    nginx_pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    addr="127.0.0.1:$port"
}

# TLS runs: the server's flags (after `serve`) and the generator's (the cert as its root).
tls_serve=()
tls_gen=()

# start DB [global flags...]: starts a server (with $tls_serve), sets server_pid and addr.
start() {
    local db="$1"; shift
    local out="$work/server.out"
    : >"$out"
    "$oauthd" --db "$db" "$@" serve --listen 127.0.0.1:0 "${tls_serve[@]}" >"$out" 2>"$work/server.log" &
    server_pid=$!
    addr=""
    for _ in $(seq 1 200); do
        addr="$(sed -n 's|^listening on https\{0,1\}://||p' "$out")"
        [[ -n "$addr" ]] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [[ -z "$addr" ]]; then
        echo "run.sh: the server did not start; its log:" >&2
        tail -20 "$work/server.log" >&2
        exit 1
    fi
}

stop() {
    for pid in "$nginx_pid" "$server2_pid" "$server_pid"; do
        [[ -n "$pid" ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    server_pid=""
    server2_pid=""
    nginx_pid=""
}

# profile NAME: with --perf, samples the server for the measured part of the next run.
perf_pid=""
profile_start() {
    [[ $perf == 1 ]] || return 0
    local mark="$work/$1.mark" pid="$server_pid"
    rm -f "$mark"
    (
        for _ in $(seq 1 1200); do [[ -e "$mark" ]] && break; sleep 0.05; done
        [[ -e "$mark" ]] || exit 0
        exec perf record -g -F 999 -o "$work/$1.perf.data" -p "$pid" \
            -- sleep "$((warmup + duration))" >"$work/$1.perf.log" 2>&1
    ) &
    perf_pid=$!
}
profile_end() {
    [[ $perf == 1 && -n "$perf_pid" ]] || return 0
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
    mkdir -p "$here/results"
    {
        echo "# self time (top frames)"
        perf report -i "$work/$1.perf.data" --no-children -g none --stdio --percent-limit 0.5 2>/dev/null
        echo "# inclusive time (frame and its callees)"
        perf report -i "$work/$1.perf.data" --children -g none --stdio --percent-limit 3 2>/dev/null
    } >"$here/results/perf-$1.txt" || true
    echo "   perf report: bench/results/perf-$1.txt" >&2
}

# workload ID DB-FLAGS... -- GENERATOR ARGS...: fresh DB, seed, serve, run, stop.
# On -pg / -pg2 rows the database is a new one in the PostgreSQL cluster and the server the
# postgres build; -pg2 starts a second server on it and puts nginx in front of both (the
# CPU notes then count the first server only).
run_load() {
    local id="$1" subcommand="$2"; shift 2
    local db="$work/$id.db" plain_oauthd="$oauthd"
    local secret store_suffix=()
    if [[ "$id" == *-pg* ]]; then
        store_suffix=(--store-suffix "-${id#*-}")
        pg_start
        oauthd="$oauthd_pg"
        local name="${id//-/_}"
        db="$(pg_database "${name,,}")"
    fi
    secret="$(seed "$db")"
    start "$db" "${fast[@]}"
    if [[ "$id" == *-pg2 ]]; then
        local first_pid="$server_pid" first_addr="$addr"
        start "$db" "${fast[@]}"
        server2_pid="$server_pid"
        server_pid="$first_pid"
        nginx_start "$first_addr" "$addr"
    fi
    oauthd="$plain_oauthd"
    echo "== $id (server $addr, pid $server_pid)" >&2
    profile_start "$id"
    "$gen" "$subcommand" --addr "$addr" --pid "$server_pid" --out "$results" \
        --email "$email" --password "$password" --client-id bench --secret "$secret" \
        --public-id benchpub --redirect "$redirect" --conns "$conns" \
        --warmup "$warmup" --duration "$duration" --mark "$work/$id.mark" "${tls_gen[@]}" \
        "${store_suffix[@]}" "$@" >/dev/null
    profile_end "$id"
    stop
}

# load_set SUFFIX: W1–W3 ("" plain, "-tls" over HTTPS with $tls_serve / $tls_gen).
load_set() {
    local s="$1"
    if wants "W1${s^^}"; then
        run_load "W1$s" w1 --codes "$codes" --warmup 1
    fi
    if wants "W2${s^^}"; then
        run_load "W2a$s" w2 --mode introspect
        run_load "W2b$s" w2 --mode verify
    fi
    if wants "W3${s^^}"; then
        run_load "W3a$s" w3 --mode confidential
        run_load "W3b$s" w3 --mode public
    fi
}

# footprint SUFFIX: W4 (start-up time, idle RSS), plain or over HTTPS.
footprint() {
    local s="$1"
    wants "W4${s^^}" || return 0
    echo "== W4$s footprint" >&2
    db="$work/W4$s.db"
    seed "$db" >/dev/null
    "$gen" startup --bin "$oauthd" --db "$db" --runs "$startup_runs" --out "$results" "${tls_gen[@]}" \
        "${tls_serve[@]}" >/dev/null
}

load_set ""
footprint ""
load_set -pg
load_set -pg2
if wants W1-TLS || wants W2-TLS || wants W3-TLS || wants W4-TLS; then
    # A self-signed certificate for 127.0.0.1, made by the generator (rcgen), served with
    # --tls-cert/--tls-key and trusted by the generator as its only root.
    "$gen" selfsigned --cert "$work/tls-cert.pem" --key "$work/tls-key.pem"
    tls_serve=(--tls-cert "$work/tls-cert.pem" --tls-key "$work/tls-key.pem")
    tls_gen=(--tls-ca "$work/tls-cert.pem")
    load_set -tls
    footprint -tls
    tls_serve=()
    tls_gen=()
fi
if wants W5; then
    db="$work/W5.db"
    secret="$(seed "$db" --slow)"
    start "$db"   # default PBKDF2 iterations (600000)
    echo "== W5 (server $addr, pid $server_pid)" >&2
    "$gen" w5 --addr "$addr" --pid "$server_pid" --out "$results" \
        --email "$slow_email" --password "$password" --client-id bench --secret "$secret" \
        --redirect "$redirect" --conns "$conns" --warmup "$warmup" --duration "$w5_duration" >/dev/null
    stop
fi

if wants W6; then
    # 1000 devices polling (pending) beside W2; see bench/README.md. Each device keeps its
    # own connection, as devices on their own addresses would: the per-address cap is
    # raised for this loopback-only run. The metrics listener gives the writer's counter.
    db="$work/W6.db"
    secret="$(seed "$db")"
    "$oauthd" --db "$db" client add --name "Bench TV" --id benchtv --public --grant device_code --json >/dev/null
    OAUTHD_MAX_CONNECTIONS_PER_IP=4096 OAUTHD_METRICS_LISTEN=127.0.0.1:0 start "$db" "${fast[@]}"
    metrics="$(sed -n 's|.*metrics listening address=||p' "$work/server.log" | head -1)"
    echo "== W6 (server $addr, metrics $metrics, pid $server_pid)" >&2
    "$gen" w6 --addr "$addr" --pid "$server_pid" --out "$results" --db "$db" --metrics "$metrics" \
        --email "$email" --password "$password" --client-id bench --secret "$secret" \
        --device-client benchtv --devices 1000 --redirect "$redirect" --conns "$conns" \
        --rounds "$([[ $quick == 1 ]] && echo 2 || echo 5)" >/dev/null
    stop
fi

# --- report ----------------------------------------------------------------------------
mkdir -p "$here/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
meta="$(printf '{"timestamp":"%s","commit":"%s","cores":%s,"cpu":"%s","kernel":"%s","quick":%s,"connections":%s,"warmup_s":%s,"duration_s":%s}' \
    "$stamp" "$commit" "$(nproc)" "${cpu//\"/}" "$(uname -r)" \
    "$([[ $quick == 1 ]] && echo true || echo false)" "$conns" "$warmup" "$duration")"
echo
echo "oauthd benchmark — commit $commit, $(nproc) cores ($cpu), $stamp$([[ $quick == 1 ]] && echo ', --quick')"
"$gen" report --in "$results" --bin "$release_bin" --meta "$meta" \
    --json-out "$here/results/latest.json" --json-copy "$here/results/$stamp.json"
echo
echo "results: bench/results/latest.json (and bench/results/$stamp.json)"
