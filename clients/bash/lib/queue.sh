# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Part of zeromesh.sh (source that file, not this one): zm_push, zm_take and zm_recover,
# straight on the Redis lists of SPEC.md section 16.
#
# Each zm_* function runs with its own shell options (local -) and splits in two: the
# function checks its arguments, opens what it needs and cleans up; its _in half does the
# work with everything passed as arguments.

# -- zm_push ------------------------------------------------------------------------

zm_push() {
    local -
    set +e -u -o pipefail
    _ZM_VERB=zm_push
    _zm_getopts "raw header+ in: at:" "$@" || return
    local raw=${_ZM_OPT[raw]-} rc at='' ms
    local -a headers=("${_ZM_OPT_LIST[@]}") args=("${_ZM_ARGS[@]}")
    ((${#args[@]} == 2)) || {
        _zm_usage "zm_push QUEUE BODY|- [--raw] [--header KEY=VALUE]... [--in SECONDS | --at UNIX_MS]"
        return
    }
    _zm_check_name queue "${args[0]}" || return
    if [[ -n ${_ZM_OPT[in]-} && -n ${_ZM_OPT[at]-} ]]; then
        _zm_err "give --in or --at, not both"
        return 64
    elif [[ -n ${_ZM_OPT[in]-} ]]; then  # a job for later: its due time, in unix ms (SPEC 16.5)
        ms=$(_zm_ms "${_ZM_OPT[in]}") || { _zm_err "--in wants seconds (like 90 or 1.5), got '${_ZM_OPT[in]}'"; return 64; }
        at=$(($(date +%s%3N) + ms))
    elif [[ -n ${_ZM_OPT[at]-} ]]; then
        [[ ${_ZM_OPT[at]} =~ ^[0-9]{1,15}$ ]] || { _zm_err "--at wants unix milliseconds, got '${_ZM_OPT[at]}'"; return 64; }
        at=${_ZM_OPT[at]}
    fi
    if [[ -n $raw && ${#headers[@]} -gt 0 ]]; then
        _zm_err "a raw job is its body alone: it cannot carry --header"
        return 64
    fi
    _zm_open_redis jq iconv base64 || return 1
    _zm_mktemp || return 1
    _ZM_PUSH_AT=$at _zm_push_in "$_ZM_TMP" "${args[@]}" "$raw" "${headers[@]}"
    rc=$?
    rm -rf -- "$_ZM_TMP"
    return $rc
}

_zm_push_in() {  # TMP QUEUE BODY|- RAW HEADER...
    local tmp=$1 queue=$2 body=$3 raw=$4 h i=0 filter='{}' id
    shift 4
    local -a jqargs=()
    _zm_body_to "$body" "$tmp/body" || return 1
    if [[ -n $raw ]]; then
        if [[ -n ${_ZM_PUSH_AT-} ]]; then
            id=$(_zm_new_id) || return 1
            _zm_schedule_in "$queue" "$id" "$tmp/body" || return 1
            printf '%s\n' "$id"
            return 0
        fi
        _zm_redis -x RPUSH "zeromesh:queue:$queue" <"$tmp/body" >/dev/null || return 1
        return 0
    fi
    for h; do
        [[ $h == ?*=* ]] || { _zm_err "--header wants KEY=VALUE, got '$h'"; return 64; }
        jqargs+=(--arg "k$i" "${h%%=*}" --arg "v$i" "${h#*=}")
        filter+=" + {(\$k$i): \$v$i}"
        i=$((i + 1))
    done
    local headers='{}'
    if ((i > 0)); then
        headers=$(jq -cn "${jqargs[@]}" "{headers: ($filter)}") || { _zm_err "cannot build the headers"; return 1; }
    fi
    id=$(_zm_new_id) || return 1
    _zm_envelope "$tmp/body" "$tmp/elem" --arg id "$id" --argjson more "$headers" \
        || { _zm_err "cannot build the envelope (jq failed)"; return 1; }
    if [[ -n ${_ZM_PUSH_AT-} ]]; then
        _zm_schedule_in "$queue" "$id" "$tmp/elem" || return 1
    else
        _zm_redis -x RPUSH "zeromesh:queue:$queue" <"$tmp/elem" >/dev/null || return 1
    fi
    printf '%s\n' "$id"
}

_zm_schedule_in() {  # QUEUE ID ELEMENT_FILE: schedule.lua, due at $_ZM_PUSH_AT (SPEC 16.5)
    _zm_redis -X "$_ZM_STDIN_TAG" EVAL "$_ZM_LUA_SCHEDULE" 3 "zeromesh:scheduled:$1" "zeromesh:scheduled-jobs:$1" \
        zeromesh:scheduled-queues "$_ZM_PUSH_AT" "$2" "$_ZM_STDIN_TAG" "$1" <"$3" >/dev/null
}

# -- zm_scheduled -------------------------------------------------------------------------

# zm_scheduled QUEUE: one line per scheduled job, earliest first: DUE_MS<TAB>ID.
zm_scheduled() {
    local -
    set +e -u -o pipefail
    _ZM_VERB=zm_scheduled
    _zm_getopts "" "$@" || return
    ((${#_ZM_ARGS[@]} == 1)) || { _zm_usage "zm_scheduled QUEUE"; return; }
    _zm_check_name queue "${_ZM_ARGS[0]}" || return
    _zm_open_redis || return 1
    _zm_redis ZRANGE "zeromesh:scheduled:${_ZM_ARGS[0]}" 0 -1 WITHSCORES | paste - - | awk -F'\t' '{ print $2 "\t" $1 }'
}

# -- zm_take ------------------------------------------------------------------------

zm_take() {
    local -
    set +e -u -o pipefail
    _ZM_VERB=zm_take
    _zm_getopts "raw timeout:" "$@" || return
    local raw=${_ZM_OPT[raw]-} timeout=${_ZM_OPT[timeout]-0} rc
    local -a args=("${_ZM_ARGS[@]}")
    ((${#args[@]} == 1)) || { _zm_usage "zm_take QUEUE [--raw] [--timeout SECONDS]"; return; }
    _zm_check_name queue "${args[0]}" || return
    _zm_seconds_opt timeout "$timeout" >/dev/null || return
    _zm_open_redis jq iconv base64 tail || return 1
    _zm_mktemp || return 1
    _zm_take_in "$_ZM_TMP" "${args[0]}" "$raw" "$timeout"
    rc=$?
    rm -rf -- "$_ZM_TMP"
    return $rc
}

_zm_take_in() {  # TMP QUEUE RAW TIMEOUT_S
    local tmp=$1 queue=$2 raw=$3 timeout=$4 key="zeromesh:queue:$2" key_bytes
    _zm_redis BLPOP "$key" "$timeout" >"$tmp/out" || return 1
    if [[ ! -s $tmp/out ]]; then
        _zm_err "no job in queue '$queue' within ${timeout} s"
        return 2
    fi
    key_bytes=$(_zm_bytes "$key")  # the reply is the key, a newline, then the element itself
    tail -c +$((key_bytes + 2)) "$tmp/out" >"$tmp/elem" || return 1
    if [[ -n $raw ]]; then
        cat "$tmp/elem"
        return
    fi
    _zm_decode "$tmp/elem" "$tmp/body" || return 1
    if [[ -n ${_ZM_ENVELOPE[why]} ]]; then
        _zm_malformed_letter "$tmp/elem" "$tmp/dead" "$queue" "${_ZM_ENVELOPE[why]}" || return 1
        _zm_redis -x RPUSH "zeromesh:dead:$queue" <"$tmp/dead" >/dev/null || return 1
        _zm_err "queue '$queue': ${_ZM_ENVELOPE[why]}; moved the element to zeromesh:dead:$queue"
        return 1
    fi
    cat "$tmp/body"
}

# -- zm_recover ---------------------------------------------------------------------

zm_recover() {
    local -
    set +e -u -o pipefail
    _ZM_VERB=zm_recover
    _zm_getopts "older-than: raw max-attempts:" "$@" || return
    local older_than=${_ZM_OPT[older-than]-$ZM_RECOVERY_S} max_attempts=${_ZM_OPT[max-attempts]-$ZM_DEFAULT_MAX_ATTEMPTS}
    local kind=envelope older_ms queue cutoff out name last='' requeued=0 buried=0
    local -a args=("${_ZM_ARGS[@]}") counts=()
    ((${#args[@]} == 1)) || { _zm_usage "zm_recover QUEUE [--older-than SECONDS] [--raw] [--max-attempts N]"; return; }
    queue=${args[0]}
    _zm_check_name queue "$queue" || return
    older_ms=$(_zm_seconds_opt older-than "$older_than") || return
    _zm_count_opt max-attempts "$max_attempts" 1 || return
    [[ -z ${_ZM_OPT[raw]-} ]] || kind=raw
    _zm_open_redis || return 1
    _zm_clock || return 1
    cutoff=$(_zm_fmt_s $((_ZM_NOW_MS - older_ms)))
    # One silent consumer at a time, the first in the set (its name byte for byte: the x keeps
    # trailing newlines), then the script for it, which takes every key in KEYS and moves nothing
    # if the consumer has beaten since. Either way it leaves the range, so the loop ends.
    while :; do
        out=$(_zm_redis ZRANGEBYSCORE "zeromesh:consumers:$queue" -inf "$cutoff" LIMIT 0 1 && printf x) || return 1
        name=${out%x}
        [[ -n $name ]] || break
        if [[ $name == "$last" ]]; then  # a name bash cannot hold (a NUL byte) names no key we can build
            _zm_err "queue '$queue': cannot recover consumer '$name': its name does not survive the shell"
            return 1
        fi
        last=$name
        # A dead consumer's job counts as a failed attempt (it may be what killed it), so a job
        # that kills every consumer ends in the dead letters; raw jobs keep no count.
        out=$(_zm_redis EVAL "$_ZM_LUA_RECOVER_DEAD" 4 "zeromesh:consumers:$queue" \
            "zeromesh:inflight:$queue:$name" "zeromesh:queue:$queue" "zeromesh:dead:$queue" \
            "$cutoff" "$name" "$queue" "$kind" "$max_attempts") || return 1
        mapfile -t counts <<<"$out"
        if [[ ${#counts[@]} != 2 || ! ${counts[0]} =~ ^[0-9]+$ || ! ${counts[1]} =~ ^[0-9]+$ ]]; then
            _zm_err "unexpected answer from the recovery script: '${out:0:80}'"
            return 1
        fi
        requeued=$((requeued + counts[0])) buried=$((buried + counts[1]))
    done
    printf '%s requeued, %s dead-lettered\n' "$requeued" "$buried"
}
