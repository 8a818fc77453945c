# Privia: build, run and test.
#
#   make run     install what is missing, build (release), start the stack in the foreground
#   make test    build, unit tests (swift test), end-to-end tests against the real stack
#   make build   release binaries in .build/release
#   make clean   remove build output (keeps var/, the local data)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

SWIFT_BUILD := swift build -c release
PYTHON := .venv/bin/python

.PHONY: all deps build run test unit e2e bench clean

all: build

deps:
	scripts/install-deps.sh

build: deps
	$(SWIFT_BUILD)

# exec: the launcher replaces make's shell, so Ctrl-C and SIGTERM reach it directly.
run: build
	exec scripts/privia-stack

test: build unit e2e

unit:
	swift test

# The e2e suite starts the release binaries through scripts/privia-stack.
e2e: build
	$(PYTHON) -m pytest -q tests/e2e

bench:
	@echo "make bench: the benchmark is not built yet (tracked in its own issue)." >&2
	@exit 1

clean:
	rm -rf .build .pytest_cache tests/e2e/__pycache__
