# SPDX-License-Identifier: MIT
# Shared by the .bats files: real servers on private sockets and free ports, bounded waits.
# Processes started here are stopped by their pid; background ones close bats' fd 3.

ZM_ROOT=$(cd "$BATS_TEST_DIRNAME/../../.." && pwd)
ZM_BASH=$ZM_ROOT/clients/bash
ZM_PY=${ZEROMESH_TEST_PYTHON:-$ZM_ROOT/.venv/bin/python}
ZM_TIME_FACTOR=${ZEROMESH_TEST_TIME_FACTOR:-1}  # scales every wait on slow machines

bats_require_minimum_version 1.5.0

# wait_for SECONDS WHAT CMD...: run CMD every 50 ms until it succeeds; fail after SECONDS.
wait_for() {
    local seconds=$1 what=$2 i tries
    shift 2
    tries=$((seconds * ZM_TIME_FACTOR * 20))
    for ((i = 0; i < tries; i++)); do
        "$@" && return 0
        sleep 0.05
    done
    echo "timed out after ${seconds}s waiting for $what" >&2
    return 1
}

free_port() {
    "$ZM_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# stop_pid PID: SIGTERM, then SIGKILL after 10 s; works from any bats phase (no wait needed).
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 200 * ZM_TIME_FACTOR; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null
    return 0
}

# start_redis DIR [redis-server args]: a private redis-server on DIR/redis.sock (no TCP port unless
# given, no persistence). Sets REDIS_PID and REDIS_SOCK.
start_redis() {
    local dir=$1
    shift
    mkdir -p "$dir"
    REDIS_SOCK=$dir/redis.sock
    redis-server --port 0 --unixsocket "$REDIS_SOCK" --save "" --appendonly no --dir "$dir" "$@" \
        >"$dir/redis.log" 2>&1 3>&- &
    REDIS_PID=$!
    wait_for 10 "redis-server at $REDIS_SOCK" redis_ping_or_gone "$REDIS_SOCK" "$@" && kill -0 "$REDIS_PID" \
        || { cat "$dir/redis.log" >&2; return 1; }
}

redis_ping_or_gone() {  # SOCK [server args, to find --requirepass]: true once it answers, or exited
    kill -0 "$REDIS_PID" 2>/dev/null || return 0
    local sock=$1 pass=''
    shift
    while (($#)); do
        [[ $1 == --requirepass ]] && pass=$2
        shift
    done
    [[ $(REDISCLI_AUTH=$pass redis-cli -s "$sock" ping 2>/dev/null) == PONG ]]
}

rcli() { redis-cli -s "$REDIS_SOCK" --raw "$@"; }

# start_broker DIR [CONFIG_TEXT]: `python -m zeromesh broker` on free ports, on our Redis.
# Sets BROKER_PID, BROKER_ENDPOINT, BROKER_PUB.
start_broker() {
    local dir=$1 config=${2:-} log
    local -a args=()
    BROKER_ENDPOINT=tcp://127.0.0.1:$(free_port)
    BROKER_PUB=tcp://127.0.0.1:$(free_port)
    log=$dir/broker.log
    if [[ -n $config ]]; then
        printf '%s\n' "$config" >"$dir/broker.toml"
        args=(--config "$dir/broker.toml")
    fi
    ZEROMESH_REDIS_URL=unix://$REDIS_SOCK "$ZM_PY" -m zeromesh broker "${args[@]}" \
        --endpoint "$BROKER_ENDPOINT" --pub "$BROKER_PUB" >"$log" 2>&1 3>&- &
    BROKER_PID=$!
    wait_for 15 "the broker to start" grep -qE "broker( [^ ]+)? up:" "$log" || { cat "$log" >&2; return 1; }
}

# start_py_worker DIR --queue Q --service S ...: the Python worker of py_peer.py. Sets PYW_PID, PYW_RECORD.
start_py_worker() {
    local dir=$1
    shift
    PYW_RECORD=$dir/py_worker.jsonl
    : >"$PYW_RECORD"
    "$ZM_PY" "$BATS_TEST_DIRNAME/py_peer.py" worker "$BROKER_ENDPOINT" "$PYW_RECORD" "$@" \
        >"$dir/py_worker.log" 2>&1 3>&- &
    PYW_PID=$!
    wait_for 15 "the Python worker to register" grep -q "^ready" "$dir/py_worker.log" \
        || { cat "$dir/py_worker.log" >&2; return 1; }
}

# A file's bytes as hex (od is in coreutils), to compare bodies byte for byte.
hex() { od -An -v -tx1 | tr -d ' \n'; }

llen_is() { [ "$(rcli llen "$2")" = "$1" ]; }  # N KEY, for wait_for
