# Privia: build, run and test.
#
#   make run     install what is missing, build (release), start the stack in the foreground
#   make test    build, unit tests (swift test), end-to-end and browser tests against the real stack
#   make build   release binaries in .build/release
#   make bench   the benchmark: Privia against the ceiling of its own shape (bench/README.md)
#   make clean   remove build output (keeps var/, the local data)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

SWIFT_BUILD := scripts/build-release.sh
PYTHON := .venv/bin/python

.PHONY: all deps build run test unit e2e browser bench bench-smoke clean

all: build

deps:
	scripts/install-deps.sh

build: deps
	$(SWIFT_BUILD)

# exec: the launcher replaces make's shell, so Ctrl-C and SIGTERM reach it directly.
run: build
	exec scripts/privia-stack

test: build unit e2e browser

unit:
	swift test

# The e2e suite starts the release binaries through scripts/privia-stack.
e2e: build
	$(PYTHON) -m pytest -q tests/e2e

# The web client in Debian's chromium (Playwright) against the real stack; a separate run,
# since tests/browser has a conftest.py of its own. Screenshots: tests/browser/test-artifacts/.
browser: build
	$(PYTHON) -m pytest -q tests/browser

# The benchmark (bench/README.md): real stacks on loopback; a full run takes a while.
# BENCH_RUNS, BENCH_DURATION and the other BENCH_* settings pass through the environment.
bench: deps
	$(SWIFT_BUILD)
	$(PYTHON) bench/run.py

# Every benchmark scenario for about a second, asserting zero errors (also part of `make e2e`).
bench-smoke: build
	$(PYTHON) -m pytest -q tests/e2e/test_bench_smoke.py

clean:
	rm -rf .build .pytest_cache tests/e2e/__pycache__ tests/browser/__pycache__ tests/browser/test-artifacts
