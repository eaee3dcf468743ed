#!/usr/bin/env bash
# Builds oauthd release binaries for the places it runs, into target/dist/, writes
# target/dist/SHA256SUMS, and smoke-tests each binary:
#
#   x86_64-musl    fully static x86_64 (x86_64-unknown-linux-musl)
#   aarch64        Raspberry Pi 3/4/5 and Zero 2 W with a 64-bit OS
#                  (aarch64-unknown-linux-gnu, statically linked)
#   armv7          Raspberry Pi 2/3/Zero 2 W with a 32-bit OS
#                  (armv7-unknown-linux-gnueabihf, statically linked)
#   x86_64-static  fully static x86_64 on glibc (+crt-static); only when asked for
#
# usage: scripts/build-release.sh [--install-deps] [TARGET...]  (default: x86_64-musl aarch64 armv7)
#
# Each target's Rust standard library comes from `rustup target add`. The C parts (the
# bundled SQLite) and the link need musl-gcc (musl-tools) for musl and the Debian cross
# compilers for ARM; --install-deps (root, Debian) installs them and qemu-user.
#
# The smoke test runs each binary (the ARM ones under qemu-user): `--version`, `user add`
# and `client add` on a fresh database, `serve` on a free loopback port, GET /healthz, and
# a code flow (POST /api/oauth_login, then the code exchanged at
# /api/oauth_access_token, then GET /api/me with the token). A target that cannot be
# built or fails its smoke test is reported and makes the script exit non-zero. Not run
# by CI: it takes minutes per target.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIST=target/dist
results=()
built=() # the binaries this run copied to $DIST
failed=0

log() { printf '\n==== %s ====\n' "$*"; }
note() { printf '  %s\n' "$*"; }

record() { # name status detail
    results+=("$(printf '%-14s %-6s %s' "$1" "$2" "$3")")
    if [[ $2 != ok ]]; then failed=1; fi
}

install_deps() {
    log "installing build dependencies from Debian"
    if [[ $(id -u) -ne 0 ]]; then
        echo "--install-deps needs root" >&2
        exit 2
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
        gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user curl file </dev/null
}

# Checks that $1 is a statically linked executable.
check_static() {
    local file_says
    file_says=$(file -b "$1")
    note "file: $file_says"
    [[ $file_says == *"statically linked"* || $file_says == *"static-pie linked"* ]]
}

# Runs the built binary $2 (through runner $3, if any) through a fresh database, a
# server and a code flow. Prints what fails; returns non-zero then.
smoke() {
    local name=$1 bin=$2 runner=${3:-}
    local dir
    dir=$(mktemp -d)
    local run=("$bin")
    [[ -n $runner ]] && run=("$runner" "$bin")
    export OAUTHD_DB=$dir/oauthd.db OAUTHD_PBKDF2_ITERATIONS=1000
    local ok=1 server=""
    {
        "${run[@]}" --version &&
            "${run[@]}" user add smoke@example.com --password-stdin <<<'smoke-pw' >/dev/null &&
            "${run[@]}" client add --name Smoke --id smoke --redirect-uri http://127.0.0.1/cb --json \
                >"$dir/client.json"
    } || ok=0
    if ((ok)); then
        : >"$dir/stdout" # exists before the server starts writing it, for the poll below
        "${run[@]}" serve --listen 127.0.0.1:0 >"$dir/stdout" 2>"$dir/stderr" &
        server=$!
        local addr="" i
        for ((i = 0; i < 600; i++)); do # qemu is slow: up to 60 s
            addr=$(sed -n 's#^listening on http://##p' "$dir/stdout")
            [[ -n $addr ]] && break
            sleep 0.1
        done
        if [[ -z $addr ]]; then
            note "$name: serve printed no address: $(cat "$dir/stderr")"
            ok=0
        fi
    fi
    if ((ok)); then
        local secret code token
        secret=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' "$dir/client.json")
        [[ $(curl -fsS "http://$addr/healthz") == ok* ]] || { note "$name: /healthz not ok"; ok=0; }
        code=$(curl -fsS "http://$addr/api/oauth_login" -H 'content-type: application/json' \
            -d '{"email":"smoke@example.com","password":"smoke-pw","response_type":"code",
                 "client_id":"smoke","redirect_uri":"http://127.0.0.1/cb","state":"s"}' |
            sed -n 's/.*"oauthCode":"\([^"]*\)".*/\1/p')
        token=$(curl -fsS "http://$addr/api/oauth_access_token" -u "smoke:$secret" \
            -d grant_type=authorization_code -d "code=$code" -d redirect_uri=http://127.0.0.1/cb |
            sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
        if [[ -z $code || -z $token ]]; then
            note "$name: the code flow failed (code ${code:+received}, token ${token:+received})"
            ok=0
        elif ! curl -fsS "http://$addr/api/me" -H "Authorization: Bearer $token" |
            grep -q '"email":"smoke@example.com"'; then
            note "$name: /api/me did not name the user"
            ok=0
        fi
    fi
    if [[ -n $server ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    unset OAUTHD_DB OAUTHD_PBKDF2_ITERATIONS
    rm -rf "$dir"
    ((ok))
}

# Copies the built binary to dist/, checks and smoke-tests it; records the result.
# args: name built_path runner(optional, e.g. qemu-arm)
finish_binary() {
    local name=$1 from=$2 runner=${3:-}
    local out="$DIST/oauthd-$name"
    mkdir -p "$DIST"
    cp "$from" "$out"
    built+=("oauthd-$name")
    local size
    size=$(stat -c %s "$out")
    note "binary: $out ($size bytes)"
    if ! check_static "$out"; then
        record "$name" FAIL "$out is not statically linked"
    elif ! smoke "$name" "$out" "$runner"; then
        record "$name" FAIL "smoke test failed${runner:+ (under $runner)}"
    else
        record "$name" ok "$out $size bytes, static, served /healthz and a code flow${runner:+ under $runner}"
    fi
}

# rustup fetches a target's standard library; false when that is impossible.
add_target() {
    rustup target list --installed 2>/dev/null | grep -qx "$1" && return 0
    rustup target add "$1"
}

# args: name triple linker-prefix(optional) qemu(optional)
build() {
    local name=$1 triple=$2 cross=${3:-} qemu=${4:-}
    log "$name: $triple"
    if ! add_target "$triple"; then
        record "$name" FAIL "rustup target add $triple failed"
        return
    fi
    local env_triple=${triple//-/_}
    local upper=${env_triple^^}
    local vars=()
    if [[ $name == x86_64-musl ]]; then
        command -v musl-gcc >/dev/null && vars+=("CC_$env_triple=musl-gcc")
    elif [[ $name == x86_64-static ]]; then
        vars+=("CARGO_TARGET_${upper}_RUSTFLAGS=-C target-feature=+crt-static")
    else
        if ! command -v "$cross-gcc" >/dev/null; then
            record "$name" FAIL "no $cross-gcc (run with --install-deps)"
            return
        fi
        vars+=("CC_$env_triple=$cross-gcc" "AR_$env_triple=$cross-ar"
            "CARGO_TARGET_${upper}_LINKER=$cross-gcc"
            "CARGO_TARGET_${upper}_RUSTFLAGS=-C target-feature=+crt-static")
    fi
    if ! env "${vars[@]}" cargo build --release --locked --target "$triple"; then
        record "$name" FAIL "cargo build failed"
        return
    fi
    local runner=""
    if [[ -n $qemu ]]; then
        runner=$(command -v "$qemu-static" || command -v "$qemu" || true)
        if [[ -z $runner ]]; then
            record "$name" FAIL "no $qemu to smoke-test it (run with --install-deps)"
            return
        fi
    fi
    finish_binary "$name" "target/$triple/release/oauthd" "$runner"
}

targets=()
for arg in "$@"; do
    case $arg in
        --install-deps) install_deps ;;
        x86_64-musl | aarch64 | armv7 | x86_64-static) targets+=("$arg") ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $arg (targets: x86_64-musl aarch64 armv7 x86_64-static)" >&2
            exit 2
            ;;
    esac
done
if ((${#targets[@]} == 0)); then
    targets=(x86_64-musl aarch64 armv7)
fi

started=$SECONDS
rm -f "$DIST/SHA256SUMS"
for target in "${targets[@]}"; do
    section_started=$SECONDS
    case $target in
        x86_64-musl) build x86_64-musl x86_64-unknown-linux-musl ;;
        aarch64) build aarch64 aarch64-unknown-linux-gnu aarch64-linux-gnu qemu-aarch64 ;;
        armv7) build armv7 armv7-unknown-linux-gnueabihf arm-linux-gnueabihf qemu-arm ;;
        x86_64-static) build x86_64-static x86_64-unknown-linux-gnu ;;
    esac
    note "($target took $((SECONDS - section_started))s)"
done

if ((${#built[@]} > 0)); then
    (cd "$DIST" && sha256sum "${built[@]}" >SHA256SUMS)
    log "checksums ($DIST/SHA256SUMS)"
    cat "$DIST/SHA256SUMS"
fi
log "summary ($((SECONDS - started))s)"
printf '%s\n' "${results[@]}"
exit "$failed"
