#!/usr/bin/env bash
# install-deps.sh: install what building, running and testing Privia needs.
#
#   scripts/install-deps.sh           everything building, running, testing and benchmarking
#                                     need: Debian packages + the e2e suite's Python venv (.venv)
#   scripts/install-deps.sh --bench   the same (what `make bench` ran when wrk was extra)
#   scripts/install-deps.sh --build   only what building needs (the Dockerfile's build stage)
#   scripts/install-deps.sh --runtime only what running needs (the Dockerfile's final stage)
#
# Idempotent and quiet: it asks apt only when a package is not installed, and pip
# only when tests/requirements.txt changed since .venv was made. A second run takes
# well under a second. The Swift toolchain is not a Debian package: install it first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[install-deps] %s\n' "$*"; }
die() { printf '[install-deps] error: %s\n' "$*" >&2; exit 1; }

mode=all
for arg in "$@"; do
    case $arg in
        --bench) ;;
        --build) mode=build ;;
        --runtime) mode=runtime ;;
        -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$arg' (try --help)" ;;
    esac
done

# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------

build_packages=(
    libfcgi-dev           # libfcgi, for the pool
    libsqlite3-dev
    libssl-dev            # also for bench/turn_load.c
    libcurl4-openssl-dev  # the OpenAI-compatible engine
    libjemalloc-dev       # the pool's allocator (Package.swift links it)
    pkg-config            # SwiftPM finds the C libraries through it
)
run_packages=(
    openssl               # the launcher's self-signed certificate
    gettext-base          # envsubst, to render the nginx templates
    curl                  # the launcher's readiness check
    # The web client's browser code, copied into the served tree by scripts/privia-stack.
    libjs-marked          # Markdown
    node-dompurify        # sanitizing the rendered HTML (no libjs- package exists)
    libjs-highlight.js    # code highlighting
    libjs-katex           # math (pulls fonts-katex)
)
# The tools the tests run (make test: swift test, then tests/e2e, which includes every
# benchmark scenario for a second, and tests/browser), besides nginx, Python and the above.
test_packages=(
    libfcgi-bin           # cgi-fcgi: test_stack.py talks FastCGI to the pool directly
    binutils              # nm: test_pool_lifecycle.py reads the pool's symbols
    wrk                   # the benchmark's HTTP load (bench/run.py)
    gcc                   # builds the benchmark's stream client, bench/turn_load.c
    libc6-dev             # its C headers (gcc only recommends them)
)
case $mode in
    all) packages=("${build_packages[@]}" "${run_packages[@]}" "${test_packages[@]}") ;;
    build) packages=("${build_packages[@]}") ;;
    # The shared libraries the binaries link, without headers or tools.
    runtime) packages=("${run_packages[@]}" libfcgi0ldbl libsqlite3-0 libssl3 libcurl4 libjemalloc2 ca-certificates) ;;
esac

# Any nginx with TLS and HTTP/2 will do; nginx-light is the smallest one that has both.
nginx_fits() {
    command -v nginx >/dev/null &&
        nginx -V 2>&1 | grep -q -- --with-http_v2_module &&
        nginx -V 2>&1 | grep -q -- --with-http_ssl_module
}
[[ $mode == build ]] || nginx_fits || packages+=(nginx-light)

# The unit tests run the fake provider with python3; the e2e suite needs venv and pip, and
# mount/umount (its disk-full test runs a stack on a small tmpfs); the browser tests
# (tests/browser) drive Debian's chromium.
if [[ $mode == all ]]; then
    packages+=(mount chromium)
    if ! command -v python3 >/dev/null; then
        packages+=(python3 python3-venv)
    elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        packages+=(python3-venv)
    fi
fi

# Installed, not merely known to dpkg: `dpkg -s` also succeeds for a package removed
# with its configuration files left behind.
installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

missing=()
for package in "${packages[@]}"; do
    installed "$package" || missing+=("$package")
done

if ((${#missing[@]})); then
    if [[ $EUID -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null; then
        sudo=(sudo)
    else
        die "missing packages (${missing[*]}) and not root: install them with apt-get"
    fi
    say "installing ${missing[*]}"
    # Keep apt from starting a system nginx on port 80 while it installs (the stack
    # runs its own nginx); only when no policy is in place already.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod +x "$policy"
        trap '"${sudo[@]}" rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ $mode != runtime ]] && ! command -v swift >/dev/null; then
    say "warning: swift is not on PATH: building needs the Swift 6.3.1 toolchain, which apt does not have"
fi

# ---------------------------------------------------------------------------
# Python packages for the e2e suite, in .venv
# ---------------------------------------------------------------------------

[[ $mode == all ]] || exit 0

requirements=tests/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)

if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
    say "creating .venv"
    rm -rf .venv
    python3 -m venv .venv
fi
if [[ $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
    say "installing $requirements into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
fi
