#!/usr/bin/env bash
# Builds the release binaries into .build/release, with the Swift runtime linked in statically.
#
# SwiftPM's incremental build can leave a module compiled against the old layout of a struct
# that another module gained a stored property in (swiftlang/swift-package-manager#10502): the
# binary then reads fields at the wrong offsets and crashes. So when any source differs from
# the last release build's, every Privia module is compiled again; the dependencies' builds
# (SwiftNIO, ...) are kept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stamp=.build/privia-sources.sha256
sources=$(find Package.swift Sources -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [[ -e .build/release && "$(cat "$stamp" 2>/dev/null)" != "$sources" ]]; then
    echo "sources changed since the last release build: compiling every Privia module again"
    find Sources -type f -name '*.swift' -exec touch {} +
fi
# The Swift runtime and Foundation linked into each binary, as in the container (Dockerfile):
# a process then maps only the parts it uses instead of the whole shared libraries, and each
# of the stack's Swift processes holds about 6 MiB less (README.md, memory).
swift build -c release --static-swift-stdlib "$@"
echo "$sources" > "$stamp"
