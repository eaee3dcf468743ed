#!/usr/bin/env bash
# Builds oauthd release binaries for the places it runs, into target/dist/:
#
#   x86_64-musl    fully static x86_64 (x86_64-unknown-linux-musl)
#   aarch64        Raspberry Pi 3/4/5 with a 64-bit OS (aarch64-unknown-linux-gnu, static)
#   x86_64-static  fully static x86_64 on glibc (+crt-static): the fallback when the musl
#                  standard library is not installed
#
# usage: scripts/build-release.sh [--install-deps] [TARGET...]   (default: all three)
#
# A Rust target needs its standard library. For musl the script runs `rustup target add`
# (Debian ships no musl standard library for Rust). For aarch64 it uses Debian's multiarch
# `libstd-rust-web-dev:arm64`, which matches Debian's own compiler (`rustc-web`,
# /usr/bin/rustc), not rustup's. A target whose standard library is missing is reported
# as UNAVAILABLE and makes the script exit non-zero; nothing is faked.
#
# --install-deps (root, Debian): installs musl-tools, the aarch64 cross gcc and libc,
# qemu-user-static (to smoke-test the aarch64 binary), rustc-web and, after
# `dpkg --add-architecture arm64`, libstd-rust-web-dev:arm64.
#
# Not run by CI. Each binary is checked with `file`, `ldd` and `oauthd --version` (under
# qemu for aarch64) before it counts.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DIST=target/dist
DEBIAN_RUSTC=${DEBIAN_RUSTC:-/usr/bin/rustc} # overridable, e.g. to test the UNAVAILABLE path
results=()
failed=0

log() { printf '\n==== %s ====\n' "$*"; }
note() { printf '  %s\n' "$*"; }

record() { # name status detail
    results+=("$(printf '%-14s %-12s %s' "$1" "$2" "$3")")
    if [[ $2 != ok ]]; then failed=1; fi
}

# Whether `rustc` ($1) has the standard library for target $2.
has_std() {
    local libdir
    libdir=$("$1" --print target-libdir --target "$2" 2>/dev/null) || return 1
    compgen -G "$libdir/libstd-*.rlib" >/dev/null
}

install_deps() {
    log "installing build dependencies from Debian"
    if [[ $(id -u) -ne 0 ]]; then
        echo "--install-deps needs root" >&2
        exit 2
    fi
    dpkg --add-architecture arm64
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static \
        rustc-web libstd-rust-web-dev:arm64 </dev/null
}

size_of() { stat -c %s "$1"; }
human() { numfmt --to=iec-i --suffix=B "$1" 2>/dev/null || echo "$1 bytes"; }

# Checks that $1 is a statically linked executable; prints what `file` and `ldd` say.
check_static() {
    local bin=$1 file_says ldd_says
    file_says=$(file -b "$bin")
    ldd_says=$(ldd "$bin" 2>&1 || true)
    note "file: $file_says"
    note "ldd:  ${ldd_says//$'\n'/; }"
    [[ $file_says == *"statically linked"* || $file_says == *"static-pie linked"* ]] || return 1
    [[ $ldd_says == *"not a dynamic executable"* || $ldd_says == *"statically linked"* ]]
}

# Copies the built binary to dist/, checks it, runs it; records the result.
# args: name triple built_path runner(optional, e.g. qemu)
finish_binary() {
    local name=$1 triple=$2 built=$3 runner=${4:-}
    local out="$DIST/oauthd-$name"
    mkdir -p "$DIST"
    cp "$built" "$out"
    local size
    size=$(size_of "$out")
    note "binary: $out ($size bytes, $(human "$size"))"
    if ! check_static "$out"; then
        record "$name" FAIL "$out is not statically linked"
        return
    fi
    local version
    if [[ -n $runner ]]; then
        if ! version=$($runner "$out" --version 2>&1); then
            record "$name" FAIL "$out --version under $runner failed: $version"
            return
        fi
        note "$runner $out --version: $version"
    elif [[ $triple == x86_64-* ]]; then
        version=$("$out" --version)
        note "$out --version: $version"
    else
        version="(not run: no qemu-aarch64 found)"
        note "$version"
    fi
    record "$name" ok "$out $size bytes, static, $version"
}

build_x86_64_musl() {
    local triple=x86_64-unknown-linux-musl
    log "x86_64-musl: $triple"
    # rustup fetches the musl standard library; Debian packages none for Rust.
    if ! has_std rustc "$triple" && command -v rustup >/dev/null; then
        rustup target add "$triple" || note "rustup target add $triple failed"
    fi
    if ! has_std rustc "$triple"; then
        note "UNAVAILABLE: rustc $(rustc --version | cut -d' ' -f2) has no standard library for $triple,"
        note "and 'rustup target add $triple' could not install it. Use x86_64-static instead."
        record x86_64-musl UNAVAILABLE "no Rust std for $triple"
        return
    fi
    # The bundled SQLite is C: compile it with musl's gcc wrapper when there is one.
    if command -v musl-gcc >/dev/null; then
        export CC_x86_64_unknown_linux_musl=musl-gcc
    fi
    if cargo build --release --locked --target "$triple"; then
        finish_binary x86_64-musl "$triple" "target/$triple/release/oauthd"
    else
        record x86_64-musl FAIL "cargo build failed"
    fi
}

build_x86_64_static() {
    local triple=x86_64-unknown-linux-gnu
    log "x86_64-static: $triple with +crt-static (glibc, fully static)"
    # Glibc's static getaddrinfo would need the shared NSS modules at run time; oauthd
    # only resolves the IP literal given to --listen, which needs no NSS.
    if CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked --target "$triple"; then
        finish_binary x86_64-static "$triple" "target/$triple/release/oauthd"
    else
        record x86_64-static FAIL "cargo build failed"
    fi
}

build_aarch64() {
    local triple=aarch64-unknown-linux-gnu
    log "aarch64: $triple (static, for the Raspberry Pi)"
    local compiler=rustc target_dir=target
    if has_std rustc "$triple"; then
        note "using rustup's rustc ($(rustc --version))"
    elif [[ -x $DEBIAN_RUSTC ]] && has_std "$DEBIAN_RUSTC" "$triple"; then
        compiler=$DEBIAN_RUSTC
        # Its own target dir: artifacts of two compilers must not share fingerprints.
        target_dir=target/debian-rustc
        note "rustup's rustc has no $triple std; using Debian's $($DEBIAN_RUSTC --version)"
        note "with libstd-rust-web-dev:arm64 from $($DEBIAN_RUSTC --print target-libdir --target "$triple")"
    else
        note "UNAVAILABLE: no Rust standard library for $triple."
        note "rustup's needs the network ('rustup target add $triple'); the offline route is"
        note "Debian's: dpkg --add-architecture arm64 && apt-get install rustc-web libstd-rust-web-dev:arm64"
        note "(or run this script with --install-deps)."
        record aarch64 UNAVAILABLE "no Rust std for $triple"
        return
    fi
    if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
        note "UNAVAILABLE: no aarch64 C compiler/linker (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
        record aarch64 UNAVAILABLE "no aarch64-linux-gnu-gcc"
        return
    fi
    if RUSTC=$compiler CARGO_TARGET_DIR=$target_dir \
        CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
        AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked --target "$triple"; then
        local qemu=""
        qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
        finish_binary aarch64 "$triple" "$target_dir/$triple/release/oauthd" "$qemu"
    else
        record aarch64 FAIL "cargo build failed"
    fi
}

targets=()
for arg in "$@"; do
    case $arg in
        --install-deps) install_deps ;;
        x86_64-musl | aarch64 | x86_64-static) targets+=("$arg") ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $arg (targets: x86_64-musl aarch64 x86_64-static)" >&2
            exit 2
            ;;
    esac
done
if ((${#targets[@]} == 0)); then
    targets=(x86_64-musl aarch64 x86_64-static)
fi

started=$SECONDS
for target in "${targets[@]}"; do
    section_started=$SECONDS
    case $target in
        x86_64-musl) build_x86_64_musl ;;
        aarch64) build_aarch64 ;;
        x86_64-static) build_x86_64_static ;;
    esac
    note "($target took $((SECONDS - section_started))s)"
done

log "summary ($((SECONDS - started))s)"
printf '%s\n' "${results[@]}"
exit "$failed"
