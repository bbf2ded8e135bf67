#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# The bash client and the Python side through one broker and one Redis:
# zm_push -> broker -> Python Worker, and Python Client -> raw queue -> zm_work --raw.

load test_helper

setup_file() {
    local dir=$BATS_FILE_TMPDIR
    start_redis "$dir/redis"
    start_broker "$dir" '
[queues.pictures]
raw = true
'
    start_py_worker "$dir" --queue from-bash
    export REDIS_PID REDIS_SOCK BROKER_PID BROKER_ENDPOINT BROKER_PUB PYW_PID PYW_RECORD
}

teardown_file() {
    stop_pid "${PYW_PID:-}"
    stop_pid "${BROKER_PID:-}"
    stop_pid "${REDIS_PID:-}"
}

setup() {
    # shellcheck source=../zeromesh.sh
    source "$ZM_BASH/zeromesh.sh"
    export ZEROMESH_REDIS_URL=unix://$REDIS_SOCK
    T=$BATS_TEST_TMPDIR
}

recorded() {  # ID: the Python worker's record of that job, once it is there
    grep -F "\"id\": \"$1\"" "$PYW_RECORD"
}

@test "jobs pushed by zm_push are worked by a Python Worker through the broker, byte for byte" {
    printf 'héllo "wörld" ✓\nsecond line\n\n' >"$T/text"
    printf 'not utf-8: \xff\xfe\x00 end' >"$T/binary"
    : >"$T/empty"
    for name in text binary empty; do
        id=$(zm_push from-bash - <"$T/$name")
        wait_for 10 "the Python worker to get job $id" recorded "$id" >/dev/null
        line=$(recorded "$id")
        [ "$(jq -r .body_hex <<<"$line")" = "$(hex <"$T/$name")" ]
        [ "$(jq -r .queue <<<"$line")" = from-bash ]
        [ "$(jq -r .attempt <<<"$line")" = 1 ]
    done
    # the broker took them from Redis and acked them: nothing is left behind
    [ "$(rcli llen zeromesh:queue:from-bash)" = 0 ]
}

@test "a job the Python client pushes to a raw queue is worked by zm_work --raw" {
    printf 'photo-42.jpg\nwith "quotes" and ü\n' >"$T/body"
    "$ZM_PY" "$BATS_TEST_DIRNAME/py_peer.py" push "$BROKER_ENDPOINT" pictures "$(hex <"$T/body")" >"$T/pyid"
    [ -s "$T/pyid" ]
    # no broker worker serves "pictures": the broker spilled the job to Redis as the body itself
    wait_for 5 "the job in Redis" llen_is 1 zeromesh:queue:pictures
    run --separate-stderr zm_work pictures 'cat >"$T/got"; printf %s "$ZM_JOB_ID" >"$T/id"' --raw --max 1 --timeout 5
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    cmp "$T/body" "$T/got"
    [ -s "$T/id" ]
    [ "$(rcli llen zeromesh:queue:pictures)" = 0 ]
}

@test "the broker hands a killed zm_work's job back once its heartbeat is stale" {
    "$ZM_PY" "$BATS_TEST_DIRNAME/py_peer.py" push "$BROKER_ENDPOINT" pictures "$(printf 'slow one' | hex)" >/dev/null
    wait_for 5 "the job in Redis" llen_is 1 zeromesh:queue:pictures
    zm_work pictures 'echo $BASHPID >"$T/pid"; exec sleep 30' --raw --consumer doomed 3>&- &
    pid=$!
    wait_for 5 "the handler to start" test -s "$T/pid"
    kill -KILL "$pid" "$(cat "$T/pid")"
    wait "$pid" || true
    # The broker runs RECOVER_DEAD every second with a 30 s cutoff: we age the heartbeat instead of waiting.
    rcli zadd zeromesh:consumers:pictures 1 doomed >/dev/null
    wait_for 5 "the broker to hand the job back" llen_is 1 zeromesh:queue:pictures
    [ "$(rcli lindex zeromesh:queue:pictures 0)" = 'slow one' ]
    [ "$(rcli exists zeromesh:inflight:pictures:doomed)" = 0 ]
    zm_work pictures 'cat >/dev/null' --raw --max 1
}
