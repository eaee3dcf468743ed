#!/usr/bin/env bash
# pg_ab.sh WORKLOAD MODE BIN... — per-request CPU and context switches of oauthd and of
# PostgreSQL, for one workload of the load generator against each release binary in turn
# (built with --features postgres), on one throwaway PostgreSQL cluster. For A/B checks of
# a PostgreSQL change; req/s here is not the benchmark (bench/run.sh is).
#   bench/pg_ab.sh w2 verify old/oauthd new/oauthd      (w2: introspect|verify,
#   bench/pg_ab.sh w3 confidential old/oauthd new/oauthd  w3: confidential|public)
# Needs PostgreSQL (Debian's postgresql); as root the cluster runs as user postgres.
set -euo pipefail
workload=${1:?workload (w2|w3)}; mode=${2:?mode}; shift 2
here=$(cd "$(dirname "$0")" && pwd)
gen="$here/target/release/oauthd-bench"
(cd "$here" && cargo build --release --quiet)
pg=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d /tmp/oauthd-pg-ab.XXXXXX); chmod 755 "$work"
as_pg() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $EUID -eq 0 ]] && chown postgres: "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$pg/initdb" --pgdata "$work/data" --username oauthd --auth trust --no-sync >/dev/null
as_pg "$pg/pg_ctl" --pgdata "$work/data" --log "$work/pg.log" --wait \
    --options "-p $port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
server=
cleanup() {
    [[ -n "$server" ]] && kill "$server" 2>/dev/null || true
    as_pg "$pg/pg_ctl" --pgdata "$work/data" --mode immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
# Summed user+system ticks (1/100 s) and context switches of the given processes' threads.
ticks() { cat $(for p in "$@"; do echo "/proc/$p/stat"; done) 2>/dev/null | awk '{s+=$14+$15} END {print s+0}'; }
switches() {
    for p in "$@"; do cat /proc/"$p"/task/*/status 2>/dev/null; done |
        awk '/^(non)?voluntary_ctxt_switches/ {s+=$2} END {print s+0}'
}
# This cluster's postmaster and its backends.
postgres_pids() { local pm; pm=$(head -1 "$work/data/postmaster.pid"); echo "$pm $(pgrep -P "$pm" | tr '\n' ' ')"; }
n=0
for bin in "$@"; do
    n=$((n + 1)); db="postgres://oauthd@127.0.0.1:$port/ab$n"
    as_pg "$pg/psql" --no-psqlrc -q -h 127.0.0.1 -p "$port" -U oauthd -d postgres -c "CREATE DATABASE ab$n"
    printf 'bench-password-1\n' | "$bin" --db "$db" --pbkdf2-iterations 1000 user add bench@example.com --password-stdin >/dev/null
    "$bin" --db "$db" client add --name "Bench Public" --id benchpub --redirect-uri http://127.0.0.1/cb --public --json >/dev/null
    secret=$("$bin" --db "$db" client add --name Bench --id bench --redirect-uri http://127.0.0.1/cb --json |
        sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p')
    "$bin" --db "$db" --pbkdf2-iterations 1000 serve --listen 127.0.0.1:0 >"$work/out$n" 2>/dev/null &
    server=$!
    addr=
    for _ in $(seq 100); do
        addr=$(sed -n 's|^listening on http://||p' "$work/out$n"); [[ -n "$addr" ]] && break; sleep 0.1
    done
    o0=$(ticks "$server"); c0=$(switches "$server"); p0=$(ticks $(postgres_pids)); q0=$(switches $(postgres_pids))
    line=$("$gen" "$workload" --mode "$mode" --addr "$addr" --email bench@example.com \
        --password bench-password-1 --client-id bench --secret "$secret" --public-id benchpub \
        --redirect http://127.0.0.1/cb --conns 16 --warmup 0 --duration 5 --out "$work/res.jsonl" 2>&1)
    o1=$(ticks "$server"); c1=$(switches "$server"); p1=$(ticks $(postgres_pids)); q1=$(switches $(postgres_pids))
    requests=$(tail -1 "$work/res.jsonl" | python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; print(r["requests"]+r.get("warmup_requests",0))')
    echo "$bin"
    echo "${line%%$'\n'*}"
    python3 -c "n=$requests; print(f'  per request: oauthd {($o1-$o0)*1e4/n:.0f} us CPU, {($c1-$c0)/n:.2f} switches; postgres {($p1-$p0)*1e4/n:.0f} us CPU, {($q1-$q0)/n:.2f} switches')"
    kill "$server"; wait "$server" 2>/dev/null || true; server=
done
