#!/usr/bin/env bash
# Instructions the server executes per request, by callgrind (deterministic: unlike the
# request rates it does not depend on how busy the machine is). For A/B checks that a
# change does not slow a path down:
#   bench/callgrind.sh OLD_BINARY NEW_BINARY [N]
# For each binary and each kind (verify, introspect, flow = login + exchange + refresh) it
# runs the server under `valgrind --tool=callgrind` (all threads) on a fresh SQLite file
# twice, once with N requests (default 2000; flow: N/10) and once with none, and prints
# (with - without) / requests. Needs valgrind and python3-requests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $# -ge 1 ]] || { sed -n '2,9p' "$0"; exit 2; }
n="${N:-2000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# instructions BIN KIND COUNT: total instructions of one server run serving COUNT requests.
instructions() {
    local bin="$1" kind="$2" count="$3" db="$work/db.sqlite" out="$work/cg.out"
    rm -f "$db"* "$out"
    printf 'bench-password-1\n' | "$bin" --db "$db" --pbkdf2-iterations 1000 user add bench@example.com --password-stdin >/dev/null
    local secret
    secret="$("$bin" --db "$db" client add --name Bench --id bench --redirect-uri http://127.0.0.1/cb --json \
        | sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p')"
    : >"$work/stdout"
    valgrind --tool=callgrind --callgrind-out-file="$out" -q \
        "$bin" --db "$db" --pbkdf2-iterations 1000 serve --listen 127.0.0.1:0 >"$work/stdout" 2>"$work/log" &
    local pid=$! addr=""
    for _ in $(seq 1 600); do
        addr="$(sed -n 's|^listening on http://||p' "$work/stdout")"
        [[ -n "$addr" ]] && break
        sleep 0.1
    done
    [[ -n "$addr" ]] || { echo "server did not start" >&2; tail "$work/log" >&2; exit 1; }
    python3 "$here/callgrind_load.py" "$addr" "$kind" "$count" "$secret"
    kill -TERM "$pid"
    wait "$pid" || true
    sed -n 's/^summary: *//p; s/^totals: *//p' "$out" | head -1
}

printf '%-10s %-12s %s\n' kind requests "instructions/request per binary"
for kind in verify introspect flow; do
    count="$n"
    [[ $kind == flow ]] && count=$((n / 10))
    line="$(printf '%-10s %-12s' "$kind" "$count")"
    for bin in "$@"; do
        with="$(instructions "$bin" "$kind" "$count")"
        without="$(instructions "$bin" "$kind" 0)"
        line+="$(printf ' %s' $(( (with - without) / count )))"
    done
    echo "$line"
done
