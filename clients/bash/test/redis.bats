#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# zm_push, zm_take, zm_work, zm_recover against a private redis-server (SPEC.md section 16).

load test_helper

setup_file() {
    start_redis "$BATS_FILE_TMPDIR/redis"
    export REDIS_PID REDIS_SOCK
}

teardown_file() {
    stop_pid "${REDIS_PID:-}"
}

setup() {
    # shellcheck source=../zeromesh.sh
    source "$ZM_BASH/zeromesh.sh"
    export ZEROMESH_REDIS_URL=unix://$REDIS_SOCK
    rcli flushall >/dev/null
    T=$BATS_TEST_TMPDIR
}

# The bodies every path must carry byte for byte (file name -> bytes).
make_bodies() {
    printf '%s' 'hello world' >"$T/plain"
    printf '%s' 'say "hi" and '\''bye'\'' \back\slash $HOME `id` $(touch pwned) * ?' >"$T/quotes"
    printf 'line one\nline two\n\n' >"$T/newlines"
    printf '%s' 'héllo wörld ✓ 日本語 🙂' >"$T/utf8"
    printf '%s' '--raw' >"$T/dashes"
    printf 'tab\there\r\nend' >"$T/controls"
}
BODIES="plain quotes newlines utf8 dashes controls"

@test "zm_push prints the id of a one-line JSON envelope it RPUSHed (SPEC 16.2)" {
    run --separate-stderr zm_push mail 'hello ann'
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    id=$output
    [[ $id =~ ^[A-Za-z0-9._-]+-[0-9a-f]+-[0-9a-f]{8}$ ]]
    [ "$(rcli llen zeromesh:queue:mail)" = 1 ]
    [ "$(rcli lindex zeromesh:queue:mail 0)" = "{\"id\":\"$id\",\"body\":\"hello ann\"}" ]
    # ids do not repeat
    run zm_push mail 'again'
    [ "$output" != "$id" ]
}

@test "bodies with quotes, newlines, UTF-8 and shell syntax go through push and take byte for byte" {
    make_bodies
    for name in $BODIES; do
        body=$(cat "$T/$name"; printf x)  # the x keeps the trailing newlines
        zm_push q -- "${body%x}" >/dev/null
    done
    for name in $BODIES; do
        zm_take q >"$T/got"
        cmp "$T/$name" "$T/got"
    done
    [ ! -e pwned ]
}

@test "a body read from stdin keeps its trailing newlines; one that is not UTF-8 travels as body_b64" {
    make_bodies
    zm_push q - <"$T/newlines" >/dev/null
    printf 'bin\xff\xfe\x00\x01end' >"$T/binary"
    zm_push q - <"$T/binary" >/dev/null
    [ "$(rcli lindex zeromesh:queue:q 1 | jq -r .body_b64)" = "$(base64 -w0 <"$T/binary")" ]
    zm_take q >"$T/got1"
    zm_take q >"$T/got2"
    cmp "$T/newlines" "$T/got1"
    cmp "$T/binary" "$T/got2"
}

@test "--header puts application headers in the envelope" {
    id=$(zm_push q body --header lang=fr --header 'note=a=b c')
    run jq -c . <<<"$(rcli lindex zeromesh:queue:q 0)"
    [ "$output" = "{\"id\":\"$id\",\"body\":\"body\",\"headers\":{\"lang\":\"fr\",\"note\":\"a=b c\"}}" ]
    run zm_push q body --header novalue
    [ "$status" -eq 64 ]
    [[ $output == *"KEY=VALUE"* ]]
}

@test "raw push and take: the element is the body itself, empty ones too" {
    make_bodies
    zm_push q --raw - <"$T/newlines"
    zm_push q --raw ''
    zm_push q --raw -- "$(cat "$T/utf8")"
    [ "$(rcli lindex zeromesh:queue:q 0 | hex)" = "$(hex <"$T/newlines")0a" ]  # redis-cli adds one newline
    zm_take q --raw >"$T/a"
    zm_take q --raw >"$T/b"
    zm_take q --raw >"$T/c"
    cmp "$T/newlines" "$T/a"
    [ ! -s "$T/b" ]
    cmp "$T/utf8" "$T/c"
}

@test "zm_take --timeout on an empty queue exits 2 with a message" {
    run --separate-stderr zm_take empty --timeout 0.2
    [ "$status" -eq 2 ]
    [ -z "$output" ]
    [[ $stderr == *"no job in queue 'empty' within 0.2 s"* ]]
}

@test "zm_take moves a malformed element to the dead letters, wrapped as an envelope, and fails" {
    rcli rpush zeromesh:queue:q 'not json {' >/dev/null
    run --separate-stderr zm_take q
    [ "$status" -eq 1 ]
    [[ $stderr == *"malformed envelope: not JSON"*"zeromesh:dead:q"* ]]
    dead=$(rcli lindex zeromesh:dead:q 0)
    [ "$(jq -r .body <<<"$dead")" = 'not json {' ]
    [ "$(jq -r .queue <<<"$dead")" = q ]
    [ "$(jq -r 'has("attempt")' <<<"$dead")" = false ]  # attempt 0, omitted as the Python side does
    [ "$(jq -r '.dead_ms | type' <<<"$dead")" = number ]
}

@test "zm_work runs the handler with the body on stdin, ZM_JOB_ID and ZM_ATTEMPT, and acks on exit 0" {
    make_bodies
    for name in $BODIES; do zm_push jobs - <"$T/$name" >>"$T/ids"; done
    n=0
    run --separate-stderr zm_work jobs 'cat >"$T/out.$ZM_ATTEMPT.$ZM_JOB_ID"' --max 6 --consumer c1
    [ "$status" -eq 0 ]
    [ -z "$stderr" ]
    for name in $BODIES; do
        n=$((n + 1))
        id=$(sed -n "${n}p" "$T/ids")
        cmp "$T/$name" "$T/out.1.$id"
    done
    [ "$(rcli llen zeromesh:queue:jobs)" = 0 ]
    [ "$(rcli llen zeromesh:inflight:jobs:c1)" = 0 ]
    [ "$(rcli zcard zeromesh:consumers:jobs)" = 0 ]  # it removed itself when it stopped
}

@test "zm_work --max N stops after N jobs and leaves the rest queued" {
    for i in 1 2 3; do zm_push q "job $i" >/dev/null; done
    run zm_work q 'cat >>"$T/seen"; echo >>"$T/seen"' --max 2
    [ "$status" -eq 0 ]
    [ "$(cat "$T/seen")" = $'job 1\njob 2' ]
    [ "$(rcli llen zeromesh:queue:q)" = 1 ]
}

@test "a failing job goes back to the tail with attempt+1 and its error, and to the dead letters at 5" {
    id=$(zm_push q 'doomed')
    zm_push q 'fine' >/dev/null
    run --separate-stderr zm_work q 'body=$(cat); echo "$body $ZM_ATTEMPT [$ZM_ERROR]" >>"$T/log"; [ "$body" = fine ] || exit 7' \
        --timeout 0.3 --consumer c1
    [ "$status" -eq 0 ]
    [ "$(cat "$T/log")" = "doomed 1 []
fine 1 []
doomed 2 [handler exited with status 7]
doomed 3 [handler exited with status 7]
doomed 4 [handler exited with status 7]
doomed 5 [handler exited with status 7]" ]
    [[ $stderr == *"attempt 1 of 5: back in the queue"* ]]
    [[ $stderr == *"failed (handler exited with status 7) 5 times: moved to zeromesh:dead:q"* ]]
    [ "$(rcli llen zeromesh:queue:q)" = 0 ]
    [ "$(rcli llen zeromesh:inflight:q:c1)" = 0 ]
    run jq -c 'del(.dead_ms)' <<<"$(rcli lrange zeromesh:dead:q 0 -1)"
    [ "$output" = "{\"id\":\"$id\",\"body\":\"doomed\",\"attempt\":5,\"error\":\"handler exited with status 7\",\"queue\":\"q\"}" ]
    # dead_ms: when it was dead-lettered, this machine's clock, in ms (within the last minute)
    [ "$(rcli lindex zeromesh:dead:q 0 | jq --argjson t "$(date +%s%3N)" '$t - .dead_ms | . >= 0 and . < 60000')" = true ]
}

@test "after one failure the element in the queue carries attempt 1 and the error (the FAIL script)" {
    zm_push q 'once' >/dev/null
    zm_work q 'exit 3' --max 1 2>/dev/null
    elem=$(rcli lindex zeromesh:queue:q 0)
    [ "$(jq -c '[.body, .attempt, .error]' <<<"$elem")" = '["once",1,"handler exited with status 3"]' ]
    zm_work q 'exit 0' --max 1 --max-attempts 2
    [ "$(rcli llen zeromesh:queue:q)" = 0 ]
}

@test "--max-attempts 1 dead-letters at the first failure; an id-less envelope gets an id" {
    rcli rpush zeromesh:queue:q '{"body":"no id","extra":[1,2]}' >/dev/null
    zm_work q 'echo "$ZM_JOB_ID" >"$T/id"; exit 1' --max 1 --max-attempts 1 2>/dev/null
    dead=$(rcli lindex zeromesh:dead:q 0)
    [ "$(jq -r .id <<<"$dead")" = "$(cat "$T/id")" ]
    [ "$(jq -c .extra <<<"$dead")" = '[1,2]' ]  # unknown fields are kept
    [ "$(jq .attempt <<<"$dead")" = 1 ]
}

@test "raw jobs: failures are counted by the consumer, the job goes back unchanged, then dead as an envelope" {
    printf 'raw\nbody ✓' >"$T/body"
    zm_push q --raw ''
    zm_push q --raw - <"$T/body"
    run --separate-stderr zm_work q --raw 'cat >"$T/got.$ZM_ATTEMPT"; [ -s "$T/got.$ZM_ATTEMPT" ] || exit 0; exit 4' \
        --timeout 0.3 --max-attempts 3
    [ "$status" -eq 0 ]
    cmp "$T/body" "$T/got.1"
    cmp "$T/body" "$T/got.3"
    [ "$(rcli llen zeromesh:queue:q)" = 0 ]
    dead=$(rcli lindex zeromesh:dead:q 0)
    [ "$(jq -j .body <<<"$dead")" = "$(cat "$T/body")" ]
    [ "$(jq -c '[.attempt, .error, .queue, (.dead_ms | type)]' <<<"$dead")" = '[3,"handler exited with status 4","q","number"]' ]
}

@test "zm_work hands a malformed element to the dead letters and goes on" {
    rcli rpush zeromesh:queue:q '{"body":1}' '{"body":"a","body_b64":"YQ=="}' >/dev/null
    zm_push q ok >/dev/null
    run --separate-stderr zm_work q 'cat >"$T/ok"' --max 1
    [ "$status" -eq 0 ]
    [ "$(cat "$T/ok")" = ok ]
    [ "$(rcli lrange zeromesh:dead:q 0 -1 | jq -r .error)" = "malformed envelope: body must be a string
malformed envelope: needs exactly one of body and body_b64" ]
}

@test "zm_recover hands a dead consumer's in-flight jobs back to the head of the queue, oldest first, attempt+1" {
    rcli rpush zeromesh:queue:q '{"body":"queued"}' >/dev/null
    rcli rpush zeromesh:inflight:q:ghost '{"body":"held 1"}' '{"body":"held 2","attempt":2}' >/dev/null
    rcli rpush zeromesh:inflight:q:alive '{"body":"busy"}' >/dev/null
    rcli zadd zeromesh:consumers:q "$(($(date +%s) - 100))" ghost "$(date +%s)" alive >/dev/null
    run zm_recover q
    [ "$status" -eq 0 ]
    [ "$output" = "2 requeued, 0 dead-lettered" ]
    [ "$(rcli lrange zeromesh:queue:q 0 -1 | jq -r .body)" = $'held 1\nheld 2\nqueued' ]
    [ "$(rcli lrange zeromesh:queue:q 0 -1 | jq -r .attempt)" = $'1\n3\nnull' ]
    [ "$(rcli lindex zeromesh:queue:q 0 | jq -r .error)" = "consumer ghost lost: no heartbeat" ]
    [ "$(rcli zrange zeromesh:consumers:q 0 -1)" = alive ]
    [ "$(rcli llen zeromesh:inflight:q:alive)" = 1 ]
    run zm_recover q --older-than 0
    [ "$output" = "1 requeued, 0 dead-lettered" ]
}

@test "zm_recover leaves a consumer that beats between the read and the script, and recovers each dead one once" {
    rcli rpush zeromesh:inflight:q:slow '{"body":"held"}' >/dev/null
    rcli rpush zeromesh:inflight:q:$'two\nlines\n' '{"body":"odd name"}' >/dev/null
    rcli zadd zeromesh:consumers:q 1 slow 2 $'two\nlines\n' >/dev/null
    # The real _zm_redis; the script call for slow (EVAL script 4 KEYS... cutoff NAME ...) is
    # preceded by its heartbeat: the race, made certain.
    eval "$(declare -f _zm_redis | sed '1s/^_zm_redis/_zm_redis_real/')"
    _zm_redis() {
        [[ $1 != EVAL || ${9-} != slow ]] || rcli zadd zeromesh:consumers:q "$(date +%s)" slow >/dev/null
        _zm_redis_real "$@"
    }
    run zm_recover q
    [ "$status" -eq 0 ]
    [ "$output" = "1 requeued, 0 dead-lettered" ]
    [ "$(rcli lrange zeromesh:inflight:q:slow 0 -1)" = '{"body":"held"}' ]
    [ "$(rcli zrange zeromesh:consumers:q 0 -1)" = slow ]
    [ "$(rcli lindex zeromesh:queue:q 0 | jq -r .body)" = "odd name" ]
    [ "$(rcli llen zeromesh:queue:q)" = 1 ]
}

@test "zm_recover --raw hands raw elements back unchanged; --max-attempts and bad options are checked" {
    rcli rpush zeromesh:inflight:r:ghost '{"body":"looks like an envelope"}' 'plain line' >/dev/null
    rcli zadd zeromesh:consumers:r 1 ghost >/dev/null
    run zm_recover r --raw
    [ "$output" = "2 requeued, 0 dead-lettered" ]
    [ "$(rcli lrange zeromesh:queue:r 0 -1)" = $'{"body":"looks like an envelope"}\nplain line' ]
    run --separate-stderr zm_recover r --max-attempts 0
    [ "$status" -eq 64 ]
    [[ $stderr == *"--max-attempts must be a whole number >= 1"* ]]
}

# kill_consumer_mid_job QUEUE CONSUMER: zm_work takes one job and dies with its handler (SIGKILL)
# while it runs; its heartbeat is then made stale, as if it had been silent for long.
kill_consumer_mid_job() {
    rm -f "$T/handler.pid"
    zm_work "$1" 'echo $BASHPID >"$T/handler.pid"; exec sleep 30' --consumer "$2" 3>&- &
    local pid=$!
    wait_for 5 "the handler to start" test -s "$T/handler.pid"
    [ "$(rcli llen "zeromesh:inflight:$1:$2")" = 1 ]
    kill -KILL "$pid" "$(cat "$T/handler.pid")"
    wait "$pid" || true
    rcli zadd "zeromesh:consumers:$1" 1 "$2" >/dev/null
}

@test "a consumer killed with SIGKILL mid-job: recovery redelivers its job to the next one, as attempt 2" {
    zm_push q 'survivor' >/dev/null
    kill_consumer_mid_job q victim
    run zm_recover q
    [ "$output" = "1 requeued, 0 dead-lettered" ]
    zm_work q 'cat >"$T/got"; echo " $ZM_ATTEMPT $ZM_ERROR" >>"$T/got"' --max 1
    [ "$(cat "$T/got")" = 'survivor 2 consumer victim lost: no heartbeat' ]
}

@test "a job whose consumer dies 5 times is dead-lettered with attempt 5 (SPEC 16.3)" {
    id=$(zm_push q 'poison')
    for i in 1 2 3 4; do
        kill_consumer_mid_job q "victim$i"
        run zm_recover q
        [ "$output" = "1 requeued, 0 dead-lettered" ]
        [ "$(rcli lindex zeromesh:queue:q 0 | jq -r .attempt)" = "$i" ]
    done
    kill_consumer_mid_job q victim5
    run zm_recover q
    [ "$output" = "0 requeued, 1 dead-lettered" ]
    [ "$(rcli llen zeromesh:queue:q)" = 0 ]
    letter=$(rcli lindex zeromesh:dead:q 0)
    [ "$(jq -r '[.id, .body, .attempt, .error, .queue] | join("|")' <<<"$letter")" = \
        "$id|poison|5|consumer victim5 lost: no heartbeat|q" ]
}

@test "SIGTERM lets the running job finish and be acked, then zm_work stops cleanly" {
    zm_push q 'first' >/dev/null
    zm_push q 'second' >/dev/null
    zm_work q 'touch "$T/started"; sleep 1; cat >>"$T/done"' --consumer c1 3>&- &
    pid=$!
    wait_for 5 "the job to start" test -e "$T/started"
    kill -TERM "$pid"
    wait "$pid"  # status 0
    [ "$(cat "$T/done")" = first ]
    [ "$(rcli lrange zeromesh:queue:q 0 -1 | jq -r .body)" = second ]
    [ "$(rcli llen zeromesh:inflight:q:c1)" = 0 ]
    [ "$(rcli zcard zeromesh:consumers:q)" = 0 ]
}

@test "SIGTERM while idle stops zm_work within the block time" {
    zm_work idle cat --consumer c1 3>&- &
    pid=$!
    wait_for 5 "the heartbeat" consumers_are 1 idle
    start=$(date +%s%N)
    kill -TERM "$pid"
    wait "$pid"
    (( ($(date +%s%N) - start) / 1000000 < (ZM_BLOCK_S + 3) * 1000 * ZM_TIME_FACTOR ))
    consumers_are 0 idle
}

consumers_are() { [ "$(rcli zcard "zeromesh:consumers:$2")" = "$1" ]; }

@test "the heartbeat is refreshed while a long job runs" {
    ZM_HEARTBEAT_S=0.3
    zm_push q slow >/dev/null
    zm_work q 'touch "$T/started"; until [ -e "$T/finish" ]; do sleep 0.05; done' --max 1 --consumer c1 3>&- &
    pid=$!
    wait_for 5 "the job to start" test -e "$T/started"
    first=$(rcli zscore zeromesh:consumers:q c1)
    wait_for 5 "a newer heartbeat than $first" heartbeat_after c1 q "$first"
    touch "$T/finish"
    wait "$pid"
}

heartbeat_after() {  # CONSUMER QUEUE SCORE
    [ "$(jq -n "$(rcli zscore "zeromesh:consumers:$2" "$1") > $3")" = true ]
}

@test "ZEROMESH_REDIS_URL: redis:// with user, password and db; unix:// with ?password=" {
    port=$(free_port)
    start_redis "$T/r2" --port "$port" --requirepass 's3cr@t/:x'
    pid2=$REDIS_PID
    REDISCLI_AUTH='s3cr@t/:x' redis-cli -s "$T/r2/redis.sock" acl setuser ann on '>p w' '~*' '&*' '+@all' >/dev/null
    ZEROMESH_REDIS_URL="redis://:s3cr%40t%2F%3Ax@127.0.0.1:$port/3" zm_push q one >/dev/null
    ZEROMESH_REDIS_URL="redis://ann:p%20w@127.0.0.1:$port?db=3" zm_push q two >/dev/null
    ZEROMESH_REDIS_URL="unix://$T/r2/redis.sock?password=s3cr%40t%2F%3Ax&db=3" zm_push q three >/dev/null
    run env REDISCLI_AUTH='s3cr@t/:x' redis-cli -s "$T/r2/redis.sock" -n 3 lrange zeromesh:queue:q 0 -1
    stop_pid "$pid2"
    [ "$(jq -r .body <<<"$output")" = $'one\ntwo\nthree' ]
}

@test "rediss:// and IPv6 URLs become redis-cli flags (TLS options from the query)" {
    # _zm_connect's results are the globals _ZM_CLI, _ZM_AUTH and _ZM_WHERE.
    ZEROMESH_REDIS_URL='rediss://u:p%26w@[::1]:6380/2?ssl_ca_certs=/etc/ca%20b.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem&ssl_cert_reqs=none&socket_timeout=5'
    _zm_connect
    [ "${_ZM_CLI[*]}" = "redis-cli -e --raw -D  -h ::1 -p 6380 --tls --cacert /etc/ca b.pem --cert /c.pem --key /k.pem --insecure -n 2 --user u" ]
    [ "$_ZM_AUTH" = 'p&w' ]
    [ "$_ZM_WHERE" = 'rediss://u:***@[::1]:6380/2?ssl_ca_certs=/etc/ca%20b.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem&ssl_cert_reqs=none&socket_timeout=5' ]
    ZEROMESH_REDIS_URL='redis://example.com' _zm_connect
    [ "${_ZM_CLI[*]}" = "redis-cli -e --raw -D  -h example.com -p 6379" ]
    [ -z "$_ZM_AUTH" ]
}

@test "rediss:// talks TLS to a real server, and an unknown CA fails loudly" {
    command -v openssl >/dev/null || skip "openssl is needed to make the test certificates"
    cd "$T"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=zm-test-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 \
        -extfile ext 2>/dev/null
    port=$(free_port)
    start_redis "$T/tls" --tls-port "$port" --tls-cert-file "$T/server.crt" --tls-key-file "$T/server.key" \
        --tls-ca-cert-file "$T/ca.crt" --tls-auth-clients no
    pid=$REDIS_PID
    ZEROMESH_REDIS_URL="rediss://127.0.0.1:$port/0?ssl_ca_certs=$T/ca.crt" run zm_push q 'over TLS'
    ZEROMESH_REDIS_URL="rediss://127.0.0.1:$port/0" run --separate-stderr zm_push q 'unverified'
    got=$(redis-cli -s "$T/tls/redis.sock" lrange zeromesh:queue:q 0 -1)
    stop_pid "$pid"
    [ "$status" -eq 1 ]
    [[ $stderr == *"certificate verify failed"* ]]
    [ "$(jq -r .body <<<"$got")" = 'over TLS' ]
}

@test "a wrong password fails loudly and the message does not show it" {
    port=$(free_port)
    start_redis "$T/r3" --port "$port" --requirepass right
    pid3=$REDIS_PID
    run --separate-stderr env ZEROMESH_REDIS_URL="redis://:wrongpass@127.0.0.1:$port/0" \
        bash -c 'source "$1"; zm_push q x' _ "$ZM_BASH/zeromesh.sh"
    stop_pid "$pid3"
    [ "$status" -eq 1 ]
    [[ $stderr == *"redis-cli RPUSH failed (Redis at redis://:***@127.0.0.1:$port/0)"* ]]
    [[ $stderr != *wrongpass* ]]
}

@test "bad or missing Redis settings are clear errors" {
    ZEROMESH_REDIS_URL=http://x run --separate-stderr zm_push q x
    [ "$status" -eq 1 ]
    [[ $stderr == *"scheme must be redis, rediss, unix or redis+sentinel, got 'http'"* ]]
    ZEROMESH_REDIS_URL=none run --separate-stderr zm_take q
    [[ $stderr == *"ZEROMESH_REDIS_URL=none turns Redis off"* ]]
    ZEROMESH_REDIS_URL="unix://$T/nothing.sock" run --separate-stderr zm_push q x
    [[ $stderr == *"no Redis socket at $T/nothing.sock"* ]]
    ZEROMESH_REDIS_URL="redis://127.0.0.1:99999" run --separate-stderr zm_push q x
    [[ $stderr == *"bad port '99999'"* ]]
    ZEROMESH_REDIS_URL="redis://127.0.0.1:1/x" run --separate-stderr zm_push q x
    [[ $stderr == *"the database must be a number, got 'x'"* ]]
    cd "$T"
    unset ZEROMESH_REDIS_URL
    run --separate-stderr zm_push q x
    [ "$status" -eq 1 ]
    [[ $stderr == *"no Redis at var/redis/redis.sock: ZEROMESH_REDIS_URL is unset"* ]]
    mkdir -p var/redis && ln -s "$REDIS_SOCK" var/redis/redis.sock
    run zm_push q 'via the default socket'
    [ "$status" -eq 0 ]
    [ "$(rcli lindex zeromesh:queue:q 0 | jq -r .body)" = 'via the default socket' ]
}

@test "usage errors exit 64 and say what is wrong; the caller's shell options are left alone" {
    run --separate-stderr zm_push q
    [ "$status" -eq 64 ]
    [[ $stderr == "zm_push: usage: zm_push QUEUE BODY|-"* ]]
    run --separate-stderr zm_push q --bogus x
    [ "$status" -eq 64 ]
    [[ $stderr == *"unknown option --bogus (write -- before a body that starts with --)"* ]]
    run --separate-stderr zm_work q cat --max two
    [ "$status" -eq 64 ]
    [[ $stderr == *"--max must be a whole number >= 0, got 'two'"* ]]
    run --separate-stderr zm_push "" x
    [ "$status" -eq 64 ]
    set +o pipefail
    set -e
    zm_push q fine >/dev/null
    [[ $- == *e* ]]
    [[ :$SHELLOPTS: != *:pipefail:* ]]
    [[ $- != *u* ]]
}

@test "a missing tool is named" {
    mkdir "$T/bin"
    for tool in bash redis-cli date mktemp rm cat iconv base64; do
        ln -s "$(command -v "$tool")" "$T/bin/$tool"
    done
    run --separate-stderr env PATH="$T/bin" "$T/bin/bash" -c 'source "$1"; zm_push q x' _ "$ZM_BASH/zeromesh.sh"
    [ "$status" -eq 1 ]
    [[ $stderr == *"zm_push: missing jq: the bash client needs"* ]]
}

@test "zeromesh-sh runs the verbs as a command" {
    run "$ZM_BASH/zeromesh-sh" push q 'from the command'
    [ "$status" -eq 0 ]
    run "$ZM_BASH/zeromesh-sh" take q
    [ "$output" = 'from the command' ]
    run "$ZM_BASH/zeromesh-sh" recover q
    [ "$output" = "0 requeued, 0 dead-lettered" ]
    run --separate-stderr "$ZM_BASH/zeromesh-sh" frobnicate
    [ "$status" -eq 64 ]
    [[ $stderr == *"unknown verb 'frobnicate'"* ]]
    run "$ZM_BASH/zeromesh-sh" --help
    [ "$status" -eq 0 ]
    [[ $output == *"push    QUEUE BODY|-"* ]]
}

@test "zeromesh.sh and zeromesh-sh find their parts from any folder and through symlinks" {
    mkdir -p "$T/bin" "$T/elsewhere"
    ln -s "$ZM_BASH/zeromesh.sh" "$T/bin/zeromesh.sh"
    ln -s ../bin/zeromesh.sh "$T/elsewhere/zm.sh"  # a relative link to a link
    ln -s "$ZM_BASH/zeromesh-sh" "$T/bin/zeromesh-sh"
    cd "$T/elsewhere"
    run bash -c 'source ./zm.sh && zm_push q "through links" && zm_take q' _
    [ "$status" -eq 0 ]
    [ "${lines[1]}" = 'through links' ]
    run bash -c 'cd / && source "$1" && declare -F zm_work' _ "$T/bin/zeromesh.sh"
    [ "$status" -eq 0 ]
    run "$T/bin/zeromesh-sh" push q 'from a linked command'
    [ "$status" -eq 0 ]
    [ "$(rcli lindex zeromesh:queue:q 0 | jq -r .body)" = 'from a linked command' ]
}

@test "zm_push --in schedules the job in the queue's schedule (SPEC 16.5), and zm_scheduled lists it" {
    local before after id score
    before=$(date +%s%3N)
    run --separate-stderr zm_push cards 'merry christmas' --in 90
    [ "$status" -eq 0 ]
    id=$output
    after=$(date +%s%3N)
    [ "$(rcli llen zeromesh:queue:cards)" = 0 ]
    score=$(rcli zscore zeromesh:scheduled:cards "$id")
    ((score >= before + 90000 && score <= after + 90000))
    [ "$(rcli hget zeromesh:scheduled-jobs:cards "$id" | jq -r .body)" = 'merry christmas' ]
    [ "$(rcli sismember zeromesh:scheduled-queues cards)" = 1 ]
    run --separate-stderr zm_push cards 'raw one' --raw --at 1798185600000
    [ "$status" -eq 0 ]
    [ "$(rcli hget zeromesh:scheduled-jobs:cards "$output")" = 'raw one' ]
    run --separate-stderr zm_scheduled cards
    [ "$status" -eq 0 ]
    [ "${#lines[@]}" -eq 2 ]
    [[ ${lines[0]} == *$'\t'"$id" ]]
    [[ ${lines[1]} == 1798185600000$'\t'* ]]
}

@test "zm_push refuses a bad --in or --at, or both, and schedules nothing" {
    run --separate-stderr zm_push cards x --in soon
    [ "$status" -eq 64 ] && [[ $stderr == *"--in wants seconds"* ]]
    run --separate-stderr zm_push cards x --at yesterday
    [ "$status" -eq 64 ] && [[ $stderr == *"--at wants unix milliseconds"* ]]
    run --separate-stderr zm_push cards x --in 1 --at 1
    [ "$status" -eq 64 ] && [[ $stderr == *"not both"* ]]
    [ "$(rcli exists zeromesh:scheduled:cards)" = 0 ]
}
