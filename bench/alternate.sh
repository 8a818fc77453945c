#!/usr/bin/env bash
# alternate.sh: two builds measured side by side. Starts one stack per build directory (each
# with privia-fcgi and privia-relay, e.g. copies of .build/release before and after a change),
# both up at once on loopback, then alternates short wrk runs between them (A B, B A, ...) and
# prints, per run, requests a second and the pool's CPU per request. On a machine whose speed
# drifts from minute to minute, only figures taken this way compare two builds.
#
#   bench/alternate.sh DIR_A DIR_B
#
#   MODE=list    (default) authenticated GET /api/conversations, a user with SEED conversations
#   MODE=turns   POST /api/query with the stub engine, half of them new conversations (scenario 5)
#   MODE=provider  the same turns answered through the OpenAI-compatible engine by the fake
#                provider (tests/fake_provider) on loopback, TOKENS=32 tokens at full speed, over
#                plain HTTP or with PROVIDER_TLS=1 over HTTPS (trusting the system's authorities
#                plus the fake's own certificate, as many as a hosted provider's client loads);
#                also prints the provider's CPU per turn and the new connections it accepted
#   ROUNDS=6     pairs of runs;  DURATION=4  seconds a run;  SEED=20  conversations made first
#
# The stacks use HTTPS ports PORT_A=18443 and PORT_B=19443 (HTTP on each minus 363) and
# temporary data directories. Set any other PRIVIA_* variable (PRIVIA_WORKERS, ...) in the
# environment: both stacks get it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

(($# == 2)) || { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
MODE=${MODE:-list} ROUNDS=${ROUNDS:-6} DURATION=${DURATION:-4} SEED=${SEED:-20} TOKENS=${TOKENS:-32}
PORT_A=${PORT_A:-18443} PORT_B=${PORT_B:-19443}
command -v wrk >/dev/null || { echo "wrk is not installed: scripts/install-deps.sh --bench" >&2; exit 2; }

stacks=() data_dirs=() provider_pid=
# A stopped stack's status is not 0: `|| true`, or errexit would leave the data directories.
stop() {
    if ((${#stacks[@]})); then kill -TERM "${stacks[@]}" 2>/dev/null || true; wait "${stacks[@]}" 2>/dev/null || true; fi
    if [[ -n $provider_pid ]]; then kill -TERM "$provider_pid" 2>/dev/null || true; wait "$provider_pid" 2>/dev/null || true; fi
    if ((${#data_dirs[@]})); then rm -rf "${data_dirs[@]}"; fi
    return 0
}
trap stop EXIT

# The fake provider for MODE=provider, and a model catalog that makes it both stacks' one model.
if [[ $MODE == provider ]]; then
    provider_dir=$(mktemp -d /tmp/privia-alternate-provider.XXXXXX)
    data_dirs+=("$provider_dir")
    tls=() scheme=http ca_file=
    if [[ ${PROVIDER_TLS:-0} == 1 ]]; then
        tls=(--tls-dir "$provider_dir/tls") scheme=https ca_file=", \"ca_file\": \"$provider_dir/ca-bundle.pem\""
    fi
    python3 tests/fake_provider/fake_openai.py --port 0 --port-file "$provider_dir/port" --keep-requests 1000 \
        "${tls[@]}" >"$provider_dir/log" 2>&1 &
    provider_pid=$!
    for _ in $(seq 100); do [[ -s $provider_dir/port ]] && break; sleep 0.1; done
    [[ -s $provider_dir/port ]] || { echo "the fake provider did not start: $provider_dir/log" >&2; exit 1; }
    provider_port=$(cat "$provider_dir/port")
    if [[ ${PROVIDER_TLS:-0} == 1 ]]; then
        cat /etc/ssl/certs/ca-certificates.crt "$provider_dir/tls/cert.pem" >"$provider_dir/ca-bundle.pem"
    fi
    cat >"$provider_dir/models.json" <<EOF
{"providers": [{"id": "fake", "base_url": "$scheme://127.0.0.1:$provider_port/v1"$ca_file}],
 "models": [{"id": "fake", "provider": "fake", "model": "stream:tokens=$TOKENS", "display_name": "Fake"}]}
EOF
    export PRIVIA_MODELS_FILE=$provider_dir/models.json
fi

# The provider's CPU (clock ticks) and how many connections have carried a turn so far.
provider_state() {
    echo "$(awk '{print $14 + $15}' "/proc/$provider_pid/stat")" \
        "$(curl -s "http://127.0.0.1:$provider_port/_connections" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["carried_completions"])')"
}

# start NAME BIN_DIR HTTPS_PORT: a stack with a user and SEED conversations; the user's token
# and conversation ids are left in its data directory, whose path goes to $started.
start() {
    local name=$1 bin_dir port=$3 data
    bin_dir=$(cd "$2" && pwd)
    data=$(mktemp -d "/tmp/privia-alternate-$name.XXXXXX")
    chmod 755 "$data"
    data_dirs+=("$data")
    PRIVIA_BIN_DIR=$bin_dir PRIVIA_DATA_DIR=$data PRIVIA_HTTPS_PORT=$port PRIVIA_HTTP_PORT=$((port - 363)) \
        PRIVIA_AUTH_RATE=100r/s PRIVIA_GRACE_SECONDS=2 scripts/privia-stack >"$data/stack.log" 2>&1 &
    stacks+=($!)
    local url=https://127.0.0.1:$port
    # Another stack on the port (another run of this script) would answer in this one's place.
    ! curl -sk "$url/" -o /dev/null || { echo "port $port is taken: set PORT_A and PORT_B" >&2; exit 1; }
    for _ in $(seq 200); do curl -skf "$url/api/health" >/dev/null && break; sleep 0.1; done
    curl -skf "$url/api/health" >/dev/null || { echo "stack $name did not start: $data/stack.log" >&2; exit 1; }
    curl -sk "$url/api/auth/signup" -H 'Content-Type: application/json' \
        -d '{"email":"alternate@example.com","password":"password123"}' >/dev/null
    curl -sk "$url/api/auth/login" -d 'username=alternate@example.com&password=password123' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])' >"$data/token"
    local ids=()
    for i in $(seq "$SEED"); do
        ids+=("$(curl -sk "$url/api/query" -H "Authorization: Bearer $(cat "$data/token")" \
            -H 'Content-Type: application/json' -d "{\"question\":\"seed $i\"}" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["conversation_id"])')")
    done
    (IFS=,; echo "${ids[*]}") >"$data/conversations"
    printf 'wrk.headers["Authorization"] = "Bearer %s"\n' "$(cat "$data/token")" >"$data/auth.lua"
    started=$data
}

# Pool CPU (user + system, clock ticks) of the pool master's children.
pool_ticks() {
    local master total=0
    master=$(cat "$1/run/privia-fcgi.pid")
    for pid in $(pgrep -P "$master"); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

# measure NAME DATA PORT: one wrk run; prints NAME, req/s, p99 and pool µs per request (with
# MODE=provider also the provider's µs per turn and the new connections it accepted).
measure() {
    local name=$1 data=$2 port=$3 script url before after out requests provider_before provider_after extra=
    if [[ $MODE == turns || $MODE == provider ]]; then
        export BENCH_METHOD=POST BENCH_PATH=/api/query BENCH_TOKEN BENCH_CONVERSATIONS
        BENCH_TOKEN=$(cat "$data/token") BENCH_CONVERSATIONS=$(cat "$data/conversations")
        export BENCH_QUESTION="How do I keep my notes private when I share a workspace?"
        script=bench/wrk/privia.lua url=https://127.0.0.1:$port/
    else
        script=$data/auth.lua url=https://127.0.0.1:$port/api/conversations
    fi
    [[ $MODE == provider ]] && read -ra provider_before < <(provider_state)
    before=$(pool_ticks "$data")
    out=$(wrk -t2 -c64 -d"${DURATION}s" --latency -s "$script" "$url")
    after=$(pool_ticks "$data")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    if [[ $MODE == provider ]]; then
        read -ra provider_after < <(provider_state)
        extra=$(printf '  provider %4d µs/turn, %5d new connections' \
            $(((provider_after[0] - provider_before[0]) * 1000000 / $(getconf CLK_TCK) / requests)) \
            $((provider_after[1] - provider_before[1])))
    fi
    printf '%s  %10s req/s  p99 %9s  pool %4d µs/request%s\n' "$name" \
        "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
        $(((after - before) * 1000000 / $(getconf CLK_TCK) / requests)) "$extra"
}

start a "$1" "$PORT_A"
data_a=$started
start b "$2" "$PORT_B"
data_b=$started
measure A "$data_a" "$PORT_A" >/dev/null  # warm both up
measure B "$data_b" "$PORT_B" >/dev/null
for round in $(seq "$ROUNDS"); do
    if ((round % 2)); then
        measure A "$data_a" "$PORT_A"; measure B "$data_b" "$PORT_B"
    else
        measure B "$data_b" "$PORT_B"; measure A "$data_a" "$PORT_A"
    fi
done
