#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The demo ecard site's log of sent cards, in bash: takes each line from the raw queue
# sent-log (the send worker, Ruby or Python, pushes one per card when given --sent-log
# sent-log; nodes/demo/broker.toml declares the queue raw, so the Redis list
# zeromesh:queue:sent-log holds the lines themselves), appends it to a file and prints it.
#
#   clients/bash/examples/sent_log.sh [LOGFILE]          (default var/sent.log)
#
# A reliable consumer (zm_work, SPEC.md 16.3): a line is removed from Redis only once it is
# in the file, and the consumer name stays the same across restarts, so a line taken by a
# run that was killed goes back to the queue when the next run starts. SIGTERM or Ctrl-C
# stops it after the line at hand (within 2 s when idle).
#
# The classic one-liner does the same without the reliability:
#   while :; do redis-cli --raw blpop zeromesh:queue:sent-log 0 | tail -n 1 >>var/sent.log; done
#
# Needs bash 4.4+, redis-cli 7+ and jq; Redis from ZEROMESH_REDIS_URL (unset: var/redis/redis.sock).
set -u
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd) || exit 1
# shellcheck source=../zeromesh.sh
source "$here/../zeromesh.sh" || exit 1

SENT_LOG_FILE=${1:-var/sent.log}
mkdir -p -- "$(dirname -- "$SENT_LOG_FILE")" || exit 1
export SENT_LOG_FILE

# zm_work runs as a child, so a signal that comes while it winds down (say Redis went away
# at the same moment and it returned an error) still stops this script rather than a retry.
stop= child=
on_signal() {
    stop=1
    [[ -z $child ]] || kill -TERM "$child" 2>/dev/null
}
trap on_signal TERM INT

# Started with the rest of the mesh, Redis may not answer yet (or it restarts): wait for it.
# zm_recover is the probe: it connects, and hands back lines held by consumers that died.
wait_for_redis() {
    local said=
    until zm_recover sent-log --raw >/dev/null 2>&1; do
        [[ -n $said ]] || echo "bash sent-log consumer: waiting for Redis (${ZEROMESH_REDIS_URL:-var/redis/redis.sock})"
        said=1
        sleep 0.5 &
        wait $! 2>/dev/null
        [[ -z $stop ]] || return 1
    done
}

echo "bash sent-log consumer: raw queue sent-log -> $SENT_LOG_FILE"
while [[ -z $stop ]] && wait_for_redis; do
    # The handler runs once per line, with the line on standard input; a non-zero status
    # would put the line back in the queue for another try. zm_work returns 0 when signalled.
    zm_work sent-log 'IFS= read -r line || [[ -n $line ]]; printf "%s\n" "$line" >>"$SENT_LOG_FILE" && printf "sent: %s\n" "$line"' \
        --raw --consumer "sent-log-${HOSTNAME:-$(hostname)}" &
    child=$!
    while :; do
        wait "$child"
        status=$?
        kill -0 "$child" 2>/dev/null || break  # else a trapped signal cut the wait short
    done
    child=
    ((status != 0)) && [[ -z $stop ]] || break
    echo "bash sent-log consumer: zm_work failed (status $status); starting again"
    sleep 1
done
echo "bash sent-log consumer: stopped"
