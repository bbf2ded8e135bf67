#!/usr/bin/env bats
# SPDX-License-Identifier: MIT
# ZEROMESH_REDIS_URL=redis+sentinel://...: a real primary, one replica and three
# `redis-server --sentinel` on free loopback ports; the last test SIGKILLs the primary.

load test_helper

SERVICE=zmtest

# start_node NAME PORT [ARGS...]: a redis-server on PORT (TCP, loopback), its files in
# $SENTINEL_DIR/NAME; its pid in NODE_PID.
start_node() {
    local name=$1 port=$2 dir=$SENTINEL_DIR/$1
    shift 2
    mkdir -p "$dir"
    # In a command substitution: not a job of bats' shell, which would report its SIGKILL.
    NODE_PID=$(redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" "$@" \
        >"$dir/redis.log" 2>&1 3>&- & echo $!)
    wait_for 10 "redis-server $name on port $port" answers "$port" \
        || { cat "$dir/redis.log" >&2; return 1; }
}

answers() { [[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]]; }

# start_sentinel N PORT: a sentinel watching the primary with quorum 2, its config in a tmp
# dir (Sentinel rewrites the file, so each gets its own).
start_sentinel() {
    local dir=$SENTINEL_DIR/sentinel$1
    mkdir -p "$dir"
    cat >"$dir/sentinel.conf" <<EOF
port $2
bind 127.0.0.1
dir $dir
sentinel monitor $SERVICE 127.0.0.1 $PRIMARY_PORT 2
sentinel down-after-milliseconds $SERVICE 1000
sentinel failover-timeout $SERVICE 3000
EOF
    (redis-server "$dir/sentinel.conf" --sentinel >"$dir/sentinel.log" 2>&1 3>&- & echo $! >>"$SENTINEL_DIR/pids")
    wait_for 10 "sentinel $1 on port $2" answers "$2" || { cat "$dir/sentinel.log" >&2; return 1; }
}

# Ready for a failover: each sentinel sees the other two and the replica.
sentinels_ready() {
    local port
    for port in $SENTINEL_PORTS; do
        [[ $(redis-cli -p "$port" sentinel ckquorum "$SERVICE" 2>/dev/null) == OK* ]] || return 1
        [[ $(redis-cli -p "$port" sentinel replicas "$SERVICE" 2>/dev/null) == *"$REPLICA_PORT"* ]] || return 1
        [[ $(redis-cli -p "$port" --raw sentinel sentinels "$SERVICE" 2>/dev/null | grep -c '^ip$') == 2 ]] || return 1
    done
}

setup_file() {
    SENTINEL_DIR=$BATS_FILE_TMPDIR/sentinel
    mkdir -p "$SENTINEL_DIR"
    : >"$SENTINEL_DIR/pids"
    PRIMARY_PORT=$(free_port)
    REPLICA_PORT=$(free_port)
    start_node primary "$PRIMARY_PORT"
    echo "$NODE_PID" >>"$SENTINEL_DIR/pids"
    echo "$NODE_PID" >"$SENTINEL_DIR/primary.pid"
    start_node replica "$REPLICA_PORT" --replicaof 127.0.0.1 "$PRIMARY_PORT"
    echo "$NODE_PID" >>"$SENTINEL_DIR/pids"
    SENTINEL_PORTS=''
    for n in 1 2 3; do
        port=$(free_port)
        SENTINEL_PORTS+="$port "
        start_sentinel "$n" "$port"
    done
    wait_for 30 "the sentinels to see each other and the replica" sentinels_ready
    export SENTINEL_DIR PRIMARY_PORT REPLICA_PORT SENTINEL_PORTS
}

teardown_file() {
    local pid
    while read -r pid; do stop_pid "$pid"; done <"$SENTINEL_DIR/pids"
}

setup() {
    # shellcheck source=../zeromesh.sh
    source "$ZM_BASH/zeromesh.sh"
    T=$BATS_TEST_TMPDIR
    local list='' port
    for port in $SENTINEL_PORTS; do list+="127.0.0.1:$port,"; done
    SENTINELS=${list%,}
    export ZEROMESH_REDIS_URL="redis+sentinel://$SENTINELS/$SERVICE"
}

# The primary the first sentinel names now.
primary_port() { redis-cli -p "${SENTINEL_PORTS%% *}" --raw sentinel get-master-addr-by-name "$SERVICE" | tail -n 1; }

@test "malformed redis+sentinel URLs are clear errors" {
    local -A cases=(
        ['redis+sentinel://127.0.0.1:26379']='names no service'
        ['redis+sentinel://127.0.0.1:26379/']='names no service'
        ['redis+sentinel:///zeromesh']='names no sentinel'
        ['redis+sentinel://127.0.0.1:26379,,127.0.0.1:26380/zeromesh']='empty sentinel address in 127.0.0.1:26379,,127.0.0.1:26380'
        ['redis+sentinel://127.0.0.1:26379,/zeromesh']='empty sentinel address'
        ['redis+sentinel://127.0.0.1:99999/zeromesh']="bad port '99999'"
        ['redis+sentinel://127.0.0.1:x/zeromesh']="cannot read the sentinel address '127.0.0.1:x'"
        ['redis+sentinel://127.0.0.1:26379/zeromesh/two']="must be a number, got 'two'"
        ['redis+sentinel://127.0.0.1:26379/zeromesh?color=red']="unknown option 'color'"
        ['redis+sentinel://127.0.0.1:26379/zeromesh?ssl=maybe']="ssl must be true or false"
        ['redis+sentinel://127.0.0.1:26379/zeromesh?socket_timeout=0']="socket_timeout must be"
        ['redis+sentinel://127.0.0.1:26379/zeromesh?min_replicas=one']="min_replicas must be a whole number"
        ['redis+sentinel://ann@127.0.0.1:26379/zeromesh']="names user 'ann' without a password"
    )
    for url in "${!cases[@]}"; do
        ZEROMESH_REDIS_URL=$url run --separate-stderr zm_push q body
        echo "$url -> $status: $stderr"
        [ "$status" -eq 1 ]
        [[ $stderr == *"${cases[$url]}"* ]]
    done
}

@test "zm_push and zm_take go to the primary the sentinels name; spaces around commas are allowed" {
    redis-cli -p "$(primary_port)" flushall >/dev/null
    id=$(zm_push q 'through sentinel')
    [ "$(redis-cli -p "$(primary_port)" --raw lindex zeromesh:queue:q 0 | jq -r .id)" = "$id" ]
    ZEROMESH_REDIS_URL="redis+sentinel://${SENTINELS//,/ , }/$SERVICE/0?socket_timeout=2&min_replicas=1" \
        zm_push q 'second' >/dev/null
    [ "$(zm_take q)" = 'through sentinel' ]
    [ "$(zm_take q)" = 'second' ]
    _zm_find_redis_cli && _zm_connect
    [ "$_ZM_PRIMARY" = "127.0.0.1:$(primary_port)" ]
    [[ $_ZM_WHERE == "primary 127.0.0.1:$(primary_port) of service '$SERVICE', from redis+sentinel://"* ]]
}

@test "the first sentinel down: the next one answers; none answering names each and why" {
    dead=$(free_port)
    ZEROMESH_REDIS_URL="redis+sentinel://127.0.0.1:$dead,$SENTINELS/$SERVICE" run zm_push q 'via the second'
    [ "$status" -eq 0 ]
    [ "$(zm_take q)" = 'via the second' ]
    ZEROMESH_REDIS_URL="redis+sentinel://127.0.0.1:$dead/$SERVICE?sentinel_password=hush" \
        run --separate-stderr zm_push q body
    [ "$status" -eq 1 ]
    [[ $stderr == *"no sentinel named the primary of service '$SERVICE'"*"127.0.0.1:$dead: Could not connect"* ]]
    [[ $stderr == *"sentinel_password=***"* && $stderr != *hush* ]]
    ZEROMESH_REDIS_URL="redis+sentinel://$SENTINELS/nosuch" run --separate-stderr zm_take q
    [ "$status" -eq 1 ]
    [[ $stderr == *"does not know service 'nosuch'"* ]]
}

@test "a command sent to a replica (READONLY) asks the sentinels again and goes to the primary" {
    _zm_find_redis_cli && _zm_connect
    primary=$_ZM_PRIMARY
    _zm_sentinel_use 127.0.0.1 "$REPLICA_PORT"  # as if the sentinels had named it before a failover
    run --separate-stderr _zm_redis RPUSH zeromesh:queue:ro one
    [ "$status" -eq 0 ]
    [[ $stderr == *"WARNING: Redis primary 127.0.0.1:$REPLICA_PORT unreachable or no longer primary; sentinel names $primary"* ]]
    [ "$(zm_take ro --raw)" = one ]
}

@test "SIGKILL of the primary: zm_work follows the failover, and zm_push/zm_take work after promotion" {
    old=$(primary_port)
    [ "$old" = "$PRIMARY_PORT" ]
    redis-cli -p "$old" flushall >/dev/null
    zm_push q 'before the failover' >/dev/null
    zm_push w 'work before' >/dev/null
    # Replication is asynchronous: wait until the replica holds both, so losing them is a bug.
    wait_for 5 "the replica to hold the jobs" replica_has 2
    ZM_SENTINEL_RETRY_S=$((30 * ZM_TIME_FACTOR)) zm_work w 'cat >>"$T/worked"; echo >>"$T/worked"' \
        --consumer c1 >"$T/work.out" 2>"$T/work.err" 3>&- &
    worker=$!
    wait_for 5 "the worker to take its first job" grep -q 'work before' "$T/worked"
    kill -KILL "$(cat "$SENTINEL_DIR/primary.pid")"
    start=$SECONDS
    # A push while no primary answers waits for the sentinels' promotion (bounded by ZM_SENTINEL_RETRY_S).
    ZM_SENTINEL_RETRY_S=$((30 * ZM_TIME_FACTOR)) run --separate-stderr zm_push w 'pushed during the failover'
    echo "# a push made just after the SIGKILL: status $status after $((SECONDS - start)) s" >&3
    echo "$stderr"
    [ "$status" -eq 0 ]
    [[ $stderr == *"WARNING: Redis primary 127.0.0.1:$old unreachable or no longer primary; sentinel names 127.0.0.1:$REPLICA_PORT"* ]]
    wait_for 20 "the replica to be promoted" test "$(primary_port)" = "$REPLICA_PORT"
    [ "$(redis-cli -p "$REPLICA_PORT" role | head -n 1)" = master ]
    zm_push w 'pushed after the failover' >/dev/null
    [ "$(zm_take q)" = 'before the failover' ]
    zm_push q 'after' >/dev/null
    [ "$(zm_take q)" = 'after' ]
    wait_for 20 "zm_work to handle the jobs pushed during and after the failover" worked_lines 3
    kill -TERM "$worker"
    wait "$worker"
    cat "$T/work.err"
    [ "$(cat "$T/worked")" = $'work before\npushed during the failover\npushed after the failover' ]
    grep -q "WARNING: Redis primary 127.0.0.1:$old unreachable" "$T/work.err"
}

replica_has() {  # N: jobs in q and w on the replica
    [ $(($(redis-cli -p "$REPLICA_PORT" llen zeromesh:queue:q) + $(redis-cli -p "$REPLICA_PORT" llen zeromesh:queue:w))) = "$1" ]
}
worked_lines() { [ "$(grep -c . "$T/worked" 2>/dev/null)" = "$1" ]; }
