# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Part of zeromesh.sh (source that file, not this one): zm_work, the reliable consumer of
# SPEC.md 16.3. One job at a time: the in-flight list zeromesh:inflight:QUEUE:CONSUMER
# holds at most the job being run.

# -- the globals this part owns ---------------------------------------------------
# One zm_work runs in a shell at a time (its handler runs in a subshell, so a zm_work
# started there has globals of its own). zm_work sets them before its loop; only the loop
# and its helpers below read them.

declare -gA _ZM_WORK=()         # the run's settings: queue, handler, consumer, raw (1 or ""),
                                # max_attempts, tmp (the scratch folder), and the keys qkey, ikey, ckey
declare -g _ZM_WORK_STOP=''     # set by the TERM/INT trap: finish the job at hand, then stop
declare -gA _ZM_RAW_ATTEMPTS=() # raw jobs keep no attempt in Redis: failures so far, by the body's sha1
declare -gA _ZM_RAW_ERRORS=()   # and the last error, by the same key

zm_work() {
    local -
    set +e -u -o pipefail +m  # +m: the handler ignores a terminal's Ctrl-C; zm_work finishes its job
    _ZM_VERB=zm_work
    _zm_getopts "raw max: consumer: timeout: max-attempts:" "$@" || return
    local max=${_ZM_OPT[max]-0} timeout=${_ZM_OPT[timeout]-0}
    local max_attempts=${_ZM_OPT[max-attempts]-$ZM_DEFAULT_MAX_ATTEMPTS}
    local consumer=${_ZM_OPT[consumer]-"bash-${HOSTNAME:-$(hostname)}-$BASHPID"} raw=${_ZM_OPT[raw]-}
    local idle_ms queue handler rc saved_traps
    local -a args=("${_ZM_ARGS[@]}")
    ((${#args[@]} == 2)) || {
        _zm_usage "zm_work QUEUE HANDLER [--raw] [--max N] [--consumer NAME] [--timeout SECONDS] [--max-attempts N]"
        return
    }
    queue=${args[0]} handler=${args[1]}
    _zm_check_name queue "$queue" || return
    [[ -n $handler ]] || { _zm_err "the handler command is empty"; return 64; }
    _zm_check_name consumer "$consumer" || return
    [[ $consumer != :* ]] || { _zm_err "a consumer name may not start with ':'"; return 64; }
    _zm_count_opt max "$max" 0 || return
    _zm_count_opt max-attempts "$max_attempts" 1 || return
    idle_ms=$(_zm_seconds_opt timeout "$timeout") || return
    _zm_open_redis jq iconv base64 sha1sum || return 1
    _zm_mktemp || return 1
    _ZM_WORK=([queue]=$queue [handler]=$handler [consumer]=$consumer [raw]=$raw [max_attempts]=$max_attempts
        [tmp]=$_ZM_TMP [qkey]="zeromesh:queue:$queue" [ikey]="zeromesh:inflight:$queue:$consumer"
        [ckey]="zeromesh:consumers:$queue")
    _ZM_RAW_ATTEMPTS=() _ZM_RAW_ERRORS=() _ZM_WORK_STOP=''
    saved_traps=$(trap -p TERM INT)
    trap '_ZM_WORK_STOP=1' TERM INT
    _zm_work_loop "$((10#$max))" "$idle_ms"
    rc=$?
    trap - TERM INT
    eval "$saved_traps"
    rm -rf -- "${_ZM_WORK[tmp]}"
    return $rc
}

_zm_work_loop() {  # MAX_JOBS (0: no limit) IDLE_MS (0: never stop for idleness)
    local max=$1 idle_ms=$2 done=0 idle_since n block_ms rc
    local qkey=${_ZM_WORK[qkey]} ikey=${_ZM_WORK[ikey]} ckey=${_ZM_WORK[ckey]} consumer=${_ZM_WORK[consumer]}
    local elem=${_ZM_WORK[tmp]}/elem
    # Jobs left by an earlier run under this name go back first, so the list holds only ours.
    _zm_redis EVAL "$_ZM_LUA_RECOVER" 2 "$qkey" "$ikey" >/dev/null || return 1
    _zm_clock || return 1
    idle_since=$_ZM_NOW_MS
    while [[ -z $_ZM_WORK_STOP ]] && ((max == 0 || done < max)); do
        _zm_clock || return 1
        _zm_redis ZADD "$ckey" "$_ZM_NOW_S" "$consumer" >/dev/null || return 1
        block_ms=$((ZM_BLOCK_S * 1000))
        if ((idle_ms > 0)); then
            ((_ZM_NOW_MS - idle_since < idle_ms)) || break
            ((idle_ms - (_ZM_NOW_MS - idle_since) < block_ms)) && block_ms=$((idle_ms - (_ZM_NOW_MS - idle_since)))
            ((block_ms >= 10)) || block_ms=10  # BLMOVE 0 would block for ever
        fi
        # In the background, so a terminal's Ctrl-C reaches only us: a BLMOVE killed
        # half-way could move a job after we looked. We let it end instead (<= ZM_BLOCK_S).
        _zm_redis BLMOVE "$qkey" "$ikey" LEFT RIGHT "$(_zm_fmt_s "$block_ms")" >"$elem" &
        _zm_wait_child $!
        rc=$?
        # Whatever BLMOVE took meanwhile is handed back below (a signal sent to our whole
        # process group, as timeout(1) does, kills BLMOVE too: a stop, not an error).
        [[ -z $_ZM_WORK_STOP ]] || break
        ((rc == 0)) || return 1
        if [[ ! -s $elem ]]; then
            # Nothing, or an empty element (a raw job with no body): only the list can tell.
            n=$(_zm_redis LLEN "$ikey") || return 1
            ((n > 0)) || continue
        fi
        _zm_run_job
        rc=$?
        ((rc == 0)) && done=$((done + 1))
        ((rc == 0 || rc == 3)) || return 1  # 3: a malformed element, dead-lettered, is no job
        _zm_clock || return 1
        idle_since=$_ZM_NOW_MS
    done
    # Normally nothing is held here; after a signal, a job BLMOVE took goes back to the head.
    _zm_redis EVAL "$_ZM_LUA_RECOVER" 2 "$qkey" "$ikey" >/dev/null || return 1
    _zm_redis ZREM "$ckey" "$consumer" >/dev/null || return 1
    return 0
}

# The job held in TMP/elem: run the handler, then LREM it or FAIL it. Status 0 once the
# job is acked or failed, 3 when the element was malformed (dead-lettered without running
# the handler), 1 on an error.
_zm_run_job() {
    local tmp=${_ZM_WORK[tmp]} queue=${_ZM_WORK[queue]} qkey=${_ZM_WORK[qkey]} ikey=${_ZM_WORK[ikey]}
    local max_attempts=${_ZM_WORK[max_attempts]} raw=${_ZM_WORK[raw]}
    local job_id='' attempt=0 last_error='' headers='{}' sum='' error rc
    if [[ -n $raw ]]; then
        cp -- "$tmp/elem" "$tmp/body" || return 1
        sum=$(sha1sum <"$tmp/elem") || return 1
        sum=${sum%% *}
        attempt=${_ZM_RAW_ATTEMPTS[$sum]:-0} last_error=${_ZM_RAW_ERRORS[$sum]:-}
        job_id=$(_zm_new_id) || return 1  # a raw job has no id in Redis; this one names it in messages
    else
        _zm_decode "$tmp/elem" "$tmp/body" || return 1
        if [[ -n ${_ZM_ENVELOPE[why]} ]]; then
            _zm_malformed_letter "$tmp/elem" "$tmp/new" "$queue" "${_ZM_ENVELOPE[why]}" || return 1
            _zm_fail "zeromesh:dead:$queue" || return 1
            _zm_err "queue '$queue': ${_ZM_ENVELOPE[why]}; moved the element to zeromesh:dead:$queue"
            return 3
        fi
        job_id=${_ZM_ENVELOPE[id]} attempt=${_ZM_ENVELOPE[attempt]}
        last_error=${_ZM_ENVELOPE[error]} headers=${_ZM_ENVELOPE[headers]}
        if [[ -z $job_id ]]; then  # SPEC 16.2: the consumer names an id-less job
            job_id=$(_zm_new_id) || return 1
        fi
    fi
    _zm_handle "$job_id" "$attempt" "$last_error" "$headers"
    rc=$?
    if ((rc == 0)); then
        [[ -n $sum ]] && unset '_ZM_RAW_ATTEMPTS[$sum]' '_ZM_RAW_ERRORS[$sum]'
        _zm_redis -X "$_ZM_STDIN_TAG" LREM "$ikey" 1 "$_ZM_STDIN_TAG" <"$tmp/elem" >/dev/null || return 1
        return 0
    fi
    attempt=$((attempt + 1))
    error="handler exited with status $rc"
    ((rc > 128)) && error+=" (signal $((rc - 128)))"
    if [[ -n $raw ]]; then
        _ZM_RAW_ATTEMPTS[$sum]=$attempt _ZM_RAW_ERRORS[$sum]=$error
        if ((attempt < max_attempts)); then
            # Back to the tail unchanged: what FAIL does when the old and new elements are one,
            # since the in-flight list holds this job alone (and nothing, had recovery taken it).
            _zm_redis LMOVE "$ikey" "$qkey" RIGHT RIGHT >/dev/null || return 1
            _zm_err "raw job $job_id of queue '$queue' failed ($error), attempt $attempt of" \
                "$max_attempts: back in the queue"
            return 0
        fi
        unset '_ZM_RAW_ATTEMPTS[$sum]' '_ZM_RAW_ERRORS[$sum]'
        _zm_envelope "$tmp/elem" "$tmp/new" --arg id "$job_id" \
            --argjson more "$(jq -cn --argjson a "$attempt" --arg e "$error" --arg q "$queue" \
                '{attempt: $a, error: $e, queue: $q, dead_ms: (now * 1000 | floor)}')" ||
            { _zm_err "cannot build a dead letter"; return 1; }
    else
        local dest=queue
        ((attempt < max_attempts)) || dest=dead
        jq -cj --arg id "$job_id" --argjson a "$attempt" --arg e "$error" --arg q "$queue" --arg d "$dest" \
            '.id //= $id | .attempt = $a | .error = $e
             | if $d == "dead" then .queue = $q | .dead_ms = (now * 1000 | floor) else . end' \
            <"$tmp/elem" >"$tmp/new" || { _zm_err "cannot rewrite the envelope"; return 1; }
        if [[ $dest == queue ]]; then
            _zm_fail "$qkey" || return 1
            _zm_err "job $job_id of queue '$queue' failed ($error), attempt $attempt of" \
                "$max_attempts: back in the queue"
            return 0
        fi
    fi
    _zm_fail "zeromesh:dead:$queue" || return 1
    _zm_err "job $job_id of queue '$queue' failed ($error) $attempt times: moved to zeromesh:dead:$queue"
}

# _zm_fail DEST: the FAIL script (SPEC 16.3): TMP/elem leaves the in-flight list, TMP/new goes to DEST.
_zm_fail() {
    local tmp=${_ZM_WORK[tmp]} new
    new=$(<"$tmp/new")  # JSON on one line: no NUL, no trailing newline to lose
    _zm_redis -X "$_ZM_STDIN_TAG" EVAL "$_ZM_LUA_FAIL" 2 "${_ZM_WORK[ikey]}" "$1" "$_ZM_STDIN_TAG" "$new" \
        <"$tmp/elem" >/dev/null
}

# _zm_handle JOB_ID ATTEMPT LAST_ERROR HEADERS: runs the handler on TMP/body (its stdin) and
# returns its status, refreshing the heartbeat meanwhile so that a long job is not taken
# for a dead consumer's. ATTEMPT counts the failed deliveries before this one.
_zm_handle() {
    local job_id=$1 attempt=$2 last_error=$3 headers=$4
    local tmp=${_ZM_WORK[tmp]} ckey=${_ZM_WORK[ckey]} consumer=${_ZM_WORK[consumer]} hb status parent=$BASHPID
    (
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        s=''
        while :; do
            sleep "$ZM_HEARTBEAT_S" &
            s=$!
            wait "$s"
            # A zm_work killed outright must look dead, so that its job is recovered.
            kill -0 "$parent" 2>/dev/null || exit 0
            _zm_clock && _zm_redis ZADD "$ckey" "$_ZM_NOW_S" "$consumer" >/dev/null
        done
    ) &
    hb=$!
    # The handler's status also goes to a file: wait says 127 when something else in this
    # shell reaped the child first (a DEBUG or ERR trap that waits, as bats' tracing does).
    rm -f "$tmp/status"
    (
        # A SIGTERM sent to the whole process group (honcho's stop, timeout(1)) reaches this
        # wrapper too: trapped, it still waits for the handler and records the handler's own
        # status, instead of dying first and having a job that ran to the end counted as failed.
        trap ':' TERM
        (
            export ZM_JOB_ID=$job_id ZM_ATTEMPT=$((attempt + 1)) ZM_QUEUE=${_ZM_WORK[queue]} ZM_CONSUMER=$consumer
            export ZM_ERROR=$last_error ZM_HEADERS=$headers
            set +u +o pipefail
            eval "${_ZM_WORK[handler]}"
        ) <"$tmp/body"
        echo "$?" >"$tmp/status"
    ) &
    _zm_wait_child $!
    status=$?
    [[ -s $tmp/status ]] && status=$(<"$tmp/status")
    kill "$hb" 2>/dev/null
    wait "$hb" 2>/dev/null
    return "$status"
}

# wait for a child to end, even when a trapped signal cuts wait short; its status.
_zm_wait_child() {
    local status
    while :; do
        wait "$1"
        status=$?
        # A trapped signal ends wait early (status > 128) while the child still runs.
        ((status > 128)) && kill -0 "$1" 2>/dev/null && continue
        return "$status"
    done
}
