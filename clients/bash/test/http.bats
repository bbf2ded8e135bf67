#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# zm_request and zm_publish through a real HTTP edge, broker and Python services (SPEC.md 17).

load test_helper

ROUTES='
[[route]]
name = "echo"
method = ["GET", "POST", "PUT"]
path = "/echo"
service = "echo"

[[route]]
name = "slow"
path = "/slow"
service = "slow"
timeout_s = 0.5

[[route]]
name = "slow-long"
path = "/slow-long"
service = "slow"
timeout_s = 10

[[route]]
name = "nobody"
path = "/nobody"
service = "nobody"

[[route]]
name = "boom"
path = "/boom"
service = "boom"

[[route]]
name = "headers"
method = "POST"
path = "/headers"
service = "headers"

[[route]]
name = "publish-fixed"
method = "POST"
path = "/publish/news.fixed"
topic = "news.fixed"

[[route]]
name = "jobs"
method = "POST"
path = "/jobs"
queue = "from-edge"
'
PUBLISH_ROUTE='
[[route]]
name = "publish"
method = "POST"
path = "/publish/{topic}"
topic = "{topic}"
'

setup_file() {
    local dir=$BATS_FILE_TMPDIR
    start_redis "$dir/redis"
    start_broker "$dir"
    start_py_worker "$dir" --service echo --service slow --service boom --service headers
    EDGE_PORT=$(free_port)
    EDGE_PUBLISH=yes
    start_edge "$dir" "$ROUTES$PUBLISH_ROUTE" || {
        # An edge without publish routes refuses the whole table: test the rest.
        grep -q "topic" "$dir/edge.log" || { cat "$dir/edge.log" >&2; return 1; }
        EDGE_PUBLISH="no: the edge refused the publish route: $(grep -m1 topic "$dir/edge.log")"
        start_edge "$dir" "$ROUTES"
    }
    export REDIS_PID REDIS_SOCK BROKER_PID BROKER_ENDPOINT BROKER_PUB PYW_PID PYW_RECORD EDGE_PID EDGE_PORT EDGE_PUBLISH
}

start_edge() {  # DIR ROUTES: the edge on EDGE_PORT; fails when it exits instead of answering
    local dir=$1
    printf '%s\n' "$2" >"$dir/routes.toml"
    ZEROMESH_REDIS_URL=unix://$REDIS_SOCK "$ZM_PY" -m zeromesh edge --listen "127.0.0.1:$EDGE_PORT" \
        --routes "$dir/routes.toml" --endpoint "$BROKER_ENDPOINT" --pub "$BROKER_PUB" >"$dir/edge.log" 2>&1 3>&- &
    EDGE_PID=$!
    wait_for 15 "the edge to answer or exit" edge_up_or_gone
    kill -0 "$EDGE_PID" 2>/dev/null
}

edge_up_or_gone() {
    ! kill -0 "$EDGE_PID" 2>/dev/null || curl -s -o /dev/null "http://127.0.0.1:$EDGE_PORT/healthz"
}

teardown_file() {
    stop_pid "${EDGE_PID:-}"
    stop_pid "${PYW_PID:-}"
    stop_pid "${BROKER_PID:-}"
    stop_pid "${REDIS_PID:-}"
}

setup() {
    # shellcheck source=../zeromesh.sh
    source "$ZM_BASH/zeromesh.sh"
    export ZEROMESH_HTTP=127.0.0.1:$EDGE_PORT ZEROMESH_REDIS_URL=unix://$REDIS_SOCK
    T=$BATS_TEST_TMPDIR
}

@test "zm_request prints the reply body byte for byte" {
    printf 'héllo "wörld" ✓ $(id) *\nline two\n\n' >"$T/body"
    zm_request /echo - <"$T/body" >"$T/got"
    cmp "$T/body" "$T/got"
    run --separate-stderr zm_request /echo 'a body' --method PUT
    [ "$status" -eq 0 ]
    [ "$output" = 'a body' ]
    [ -z "$stderr" ]
}

@test "zm_request without a body is a GET; the query and --header reach the service" {
    run zm_request '/echo?card=42&lang=fr' --header 'X-Test: yes'
    [ "$status" -eq 0 ]
    [ "$output" = 'GET card=42&lang=fr yes' ]
}

@test "a body goes as application/octet-stream unless --header sets the Content-Type" {
    run zm_request /headers 'x'
    [ "$(jq -r '."content-type"' <<<"$output")" = application/octet-stream ]
    run zm_request /headers 'a=1' --header 'content-type: application/x-www-form-urlencoded'
    [ "$(jq -r '."content-type"' <<<"$output")" = application/x-www-form-urlencoded ]
}

@test "no route: exit 1 with the status on stderr" {
    run --separate-stderr zm_request /nowhere
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [[ $stderr == *"GET /nowhere: HTTP 404"* ]]
}

@test "no worker serves the service: 503, exit 3" {
    run --separate-stderr zm_request /nobody
    [ "$status" -eq 3 ]
    [[ $stderr == *"HTTP 503 Service Unavailable: no worker serves it"* ]]
}

@test "the route's deadline passes: 504, exit 2; our own --timeout passes first: exit 2" {
    run --separate-stderr zm_request /slow
    [ "$status" -eq 2 ]
    [[ $stderr == *"HTTP 504 Gateway Timeout"* ]]
    run --separate-stderr zm_request /slow-long --timeout 0.5
    [ "$status" -eq 2 ]
    [[ $stderr == *"GET /slow-long: no answer from the edge within 0.5 s"* ]]
}

@test "a service that raises: 502, exit 1, the edge's short body on stderr" {
    run --separate-stderr zm_request /boom
    [ "$status" -eq 1 ]
    [[ $stderr == *"HTTP 502"*"error id"* ]]
}

@test "an edge that is not there: exit 1 and where we looked" {
    ZEROMESH_HTTP=127.0.0.1:$(free_port) run --separate-stderr zm_request /echo
    [ "$status" -eq 1 ]
    [[ $stderr == *"cannot connect to the edge at http://127.0.0.1:"* ]]
    run --separate-stderr zm_request echo
    [ "$status" -eq 64 ]
    [[ $stderr == *"the path must start with /"* ]]
}

@test "a push route answers 202 with the job id, and the job waits in Redis for zm_take" {
    run --separate-stderr zm_request /jobs 'from curl'
    [ "$status" -eq 0 ]
    id=$(jq -r .id <<<"$output")
    [ -n "$id" ]
    run zm_take from-edge --timeout 5
    [ "$output" = 'from curl' ]
}

# subscribe_until_published TOPIC BODYFILE: a Python subscriber to every topic; zm_publish until it sees
# one event (PUB/SUB has a slow joiner); the event's JSON in $T/events.
subscribe_until_published() {
    "$ZM_PY" -m zeromesh subscribe --pub "$BROKER_PUB" --json --count 1 --timeout 10 >"$T/events" 2>"$T/sub.log" 3>&- &
    local sub=$! i
    for ((i = 0; i < 50; i++)); do
        run --separate-stderr zm_publish "$1" - <"$2"
        [ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
        [ -n "$output" ] || return 1
        [ -s "$T/events" ] && break
        sleep 0.2
    done
    wait "$sub" || { cat "$T/sub.log"; return 1; }
}

@test "zm_publish through a fixed publish route: the subscriber gets the body byte for byte" {
    printf 'breaking:\n"news" ✓ $(id)' >"$T/body"
    subscribe_until_published news.fixed "$T/body"
    event=$(head -n 1 "$T/events")
    [ "$(jq -r .topic <<<"$event")" = news.fixed ]
    [ "$(jq -r .encoding <<<"$event")" = utf-8 ]
    [ "$(jq -j .body <<<"$event")" = "$(cat "$T/body")" ]
}

@test "zm_publish posts to the edge's publish route and a subscriber gets the event" {
    [ "$EDGE_PUBLISH" = yes ] || skip "$EDGE_PUBLISH"
    printf 'breaking:\n"news" ✓' >"$T/body"
    subscribe_until_published news.bash "$T/body"
    event=$(head -n 1 "$T/events")
    topic=$(jq -r .topic <<<"$event")
    [ "$topic" != '{topic}' ] || skip "the edge published to the literal topic '{topic}': it does not format topic with the path parameters yet"
    [ "$topic" = news.bash ]
    [ "$(jq -r .body <<<"$event")" = "$(cat "$T/body")" ]
}

@test "zm_publish: a topic that needs percent-encoding arrives whole" {
    [ "$EDGE_PUBLISH" = yes ] || skip "$EDGE_PUBLISH"
    printf 'odd topic' >"$T/body"
    subscribe_until_published 'cärds 4?2&x' "$T/body"
    topic=$(head -n 1 "$T/events" | jq -r .topic)
    [ "$topic" != '{topic}' ] || skip "the edge does not format topic with the path parameters yet"
    [ "$topic" = 'cärds 4?2&x' ]
}

@test "zm_publish without a publish route says what the edge's table needs" {
    ZEROMESH_HTTP=http://127.0.0.1:$EDGE_PORT/elsewhere run --separate-stderr zm_publish t b
    [ "$status" -eq 1 ]
    [[ $stderr == *"HTTP 404"* ]]
    [[ $stderr == *'path = "/publish/{topic}", topic = "{topic}"'* ]]
}

events_seen() { [ "$(grep -c "\"topic\": *\"$1\"" "$T/events" 2>/dev/null)" -ge "$2" ]; }  # TOPIC N

@test "a script that publishes 100 events with zm_publish and exits at once: a subscriber gets all 100" {
    "$ZM_PY" -m zeromesh subscribe --pub "$BROKER_PUB" --json --timeout $((60 * ZM_TIME_FACTOR)) \
        burst. probe.bash >"$T/events" 2>"$T/sub.log" 3>&- &
    sub=$!
    # Subscribed once a probe arrives (PUB/SUB has a slow joiner).
    for ((i = 0; i < 50; i++)); do
        zm_publish probe.bash "probe $i" >/dev/null
        events_seen probe.bash 1 && break
        sleep 0.2
    done
    events_seen probe.bash 1 || { kill "$sub"; cat "$T/sub.log"; false; }
    # A separate process that publishes and exits without waiting for anything else.
    run bash -c 'source "$1"; for ((i = 1; i <= 100; i++)); do zm_publish burst.bash "event $i" >/dev/null || exit 1; done' \
        _ "$ZM_BASH/zeromesh.sh"
    [ "$status" -eq 0 ]
    wait_for 10 "the subscriber to get 100 events" events_seen burst.bash 100 || true
    kill "$sub" 2>/dev/null
    wait "$sub" || true
    got=$(jq -r 'select(.topic == "burst.bash") | .body' "$T/events")
    [ "$got" = "$(seq -f 'event %g' 1 100)" ]
}
