# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Part of zeromesh.sh (source that file, not this one): Redis through Sentinel. A
# redis+sentinel:// URL names sentinels and a service; the primary is what a sentinel answers
# to SENTINEL get-master-addr-by-name. After a connection error (or a READONLY answer: the
# address now holds a replica) a command asks the sentinels again and is sent to the new
# primary, for at most ZM_SENTINEL_RETRY_S seconds.

# -- settings (public, like common.sh's) -------------------------------------------------

ZM_SENTINEL_ASK_S=1       # longest wait for one sentinel's answer (the URL's socket_timeout overrides)
ZM_SENTINEL_RETRY_S=20    # how long one command keeps asking for a new primary: Sentinel's
                          # down-after plus an election, with room (a failover takes seconds)

# -- the globals this part owns ---------------------------------------------------------

declare -ga _ZM_SENTINELS=()       # _zm_sentinel_parse: HOST:PORT of each sentinel, in URL order
declare -g _ZM_SENTINEL_SERVICE='' # _zm_sentinel_parse: the monitored service's name
declare -g _ZM_SENTINEL_AUTH=''    # _zm_sentinel_parse: sentinel_password, for the sentinels alone
declare -g _ZM_SENTINEL_ASK=''     # _zm_sentinel_parse: seconds one sentinel gets to answer
declare -ga _ZM_SENTINEL_TLS=()    # _zm_sentinel_parse: redis-cli TLS flags, for sentinels and primary
declare -ga _ZM_SENTINEL_REST=()   # _zm_sentinel_parse: redis-cli flags after -h/-p (TLS, -n, --user)
declare -g _ZM_SENTINEL_URL=''     # _zm_sentinel_parse: the URL fit for messages
declare -g _ZM_PRIMARY=''          # _zm_sentinel_resolve: HOST:PORT of the primary in use
declare -g _ZM_REDIS_ERR=''        # _zm_sentinel_try: what redis-cli said on stderr

# Errors that mean "this address is not (or no longer) the primary": nothing was written,
# or (a connection closed mid-command) perhaps it was, which a retry makes at-least-once.
_ZM_SENTINEL_RETRY_ON='Could not connect|Connection refused|Server closed the connection|Connection reset|READONLY|MASTERDOWN|LOADING|I/O error'

# -- the URL ----------------------------------------------------------------------------------

# _zm_sentinel_parse REST QUERY: the part of a redis+sentinel:// URL after "://"
# (without its query) and the query. Sets the globals above, _ZM_AUTH (the primary's password)
# and _ZM_WHERE; status 1 with a message on a malformed URL.
#   redis+sentinel://[[user]:password@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB][?sentinel_password=
#   &ssl=true&ssl_ca_certs=PATH&socket_timeout=S&min_replicas=N]
_zm_sentinel_parse() {
    local rest=$1 query=$2 hosts path userinfo='' user='' db='' item host port pair k v url ms
    local -a items=() pairs=()
    local v6='^\[([0-9A-Fa-f:.]+)\](:([0-9]*))?$' v4='^([^]:/[]+)(:([0-9]*))?$'  # [::1]:26379, host:26379
    url=$_ZM_WHERE
    _ZM_SENTINELS=() _ZM_SENTINEL_SERVICE='' _ZM_SENTINEL_AUTH='' _ZM_SENTINEL_ASK=$ZM_SENTINEL_ASK_S
    _ZM_SENTINEL_TLS=() _ZM_SENTINEL_REST=() _ZM_SENTINEL_URL=$url _ZM_PRIMARY=''
    local form="redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"
    if [[ $rest != */* ]]; then
        _zm_err "ZEROMESH_REDIS_URL $url names no service: the form is $form"
        return 1
    fi
    hosts=${rest%%/*} path=${rest#*/}
    if [[ $hosts == *@* ]]; then
        userinfo=${hosts%@*} hosts=${hosts##*@}
    fi
    [[ -n ${hosts//[[:space:]]/} ]] || { _zm_err "ZEROMESH_REDIS_URL $url names no sentinel: the form is $form"; return 1; }
    IFS=',' read -r -a items <<<"$hosts,"  # the trailing comma keeps a last empty item visible
    for item in "${items[@]}"; do
        item=${item#"${item%%[![:space:]]*}"} item=${item%"${item##*[![:space:]]}"}
        if [[ -z $item ]]; then
            _zm_err "empty sentinel address in $hosts (ZEROMESH_REDIS_URL $url)"
            return 1
        fi
        if [[ $item =~ $v6 || $item =~ $v4 ]]; then
            host=${BASH_REMATCH[1]} port=${BASH_REMATCH[3]:-26379}
        else
            _zm_err "ZEROMESH_REDIS_URL $url: cannot read the sentinel address '$item' (HOST:PORT)"
            return 1
        fi
        if [[ ! $port =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
            _zm_err "ZEROMESH_REDIS_URL $url: bad port '$port' in sentinel address '$item'"
            return 1
        fi
        _ZM_SENTINELS+=("$host:$((10#$port))")
    done
    _ZM_SENTINEL_SERVICE=${path%%/*}
    [[ $path == */* ]] && db=${path#*/}
    if [[ -z $_ZM_SENTINEL_SERVICE ]]; then
        _zm_err "ZEROMESH_REDIS_URL $url names no service: the form is $form"
        return 1
    fi
    _zm_urldecode "$_ZM_SENTINEL_SERVICE"
    _ZM_SENTINEL_SERVICE=$_ZM_URLDECODED
    if [[ -n $db && ! $db =~ ^[0-9]+$ ]]; then
        _zm_err "ZEROMESH_REDIS_URL $url: the database after the service must be a number, got '$db'"
        return 1
    fi
    if [[ -n $userinfo ]]; then
        if [[ $userinfo == *:* ]]; then
            _zm_urldecode "${userinfo#*:}"
            _ZM_AUTH=$_ZM_URLDECODED
        fi
        _zm_urldecode "${userinfo%%:*}"
        user=$_ZM_URLDECODED
    fi
    [[ -z $query ]] || IFS='&' read -r -a pairs <<<"$query"
    for pair in "${pairs[@]}"; do
        k=${pair%%=*} v=''
        [[ $pair == *=* ]] && v=${pair#*=}
        _zm_urldecode "$v"
        v=$_ZM_URLDECODED
        case $k in
        sentinel_password) _ZM_SENTINEL_AUTH=$v ;;
        ssl)
            case ${v,,} in
            true | 1 | yes) _ZM_SENTINEL_TLS+=(--tls) ;;
            false | 0 | no) ;;
            *) _zm_err "ZEROMESH_REDIS_URL $url: ssl must be true or false, got '$v'"; return 1 ;;
            esac
            ;;
        ssl_ca_certs) _ZM_SENTINEL_TLS+=(--cacert "$v") ;;
        socket_timeout)
            ms=$(_zm_ms "$v") && ((ms > 0)) || {
                _zm_err "ZEROMESH_REDIS_URL $url: socket_timeout must be a number of seconds > 0, got '$v'"
                return 1
            }
            _ZM_SENTINEL_ASK=$v
            ;;
        min_replicas)
            # The brokers' WAIT after a durable push; zm_push writes with one RPUSH and does not wait.
            [[ $v =~ ^[0-9]{1,3}$ ]] || {
                _zm_err "ZEROMESH_REDIS_URL $url: min_replicas must be a whole number, got '$v'"
                return 1
            }
            ;;
        *)
            _zm_err "ZEROMESH_REDIS_URL $url: unknown option '$k' (a redis+sentinel URL takes" \
                "sentinel_password, ssl, ssl_ca_certs, socket_timeout and min_replicas)"
            return 1
            ;;
        esac
    done
    if [[ " ${_ZM_SENTINEL_TLS[*]} " == *" --cacert "* && " ${_ZM_SENTINEL_TLS[*]} " != *" --tls "* ]]; then
        _ZM_SENTINEL_TLS=(--tls "${_ZM_SENTINEL_TLS[@]}")  # a CA means TLS, as for rediss://
    fi
    _ZM_SENTINEL_REST=("${_ZM_SENTINEL_TLS[@]}")
    [[ -z $db ]] || _ZM_SENTINEL_REST+=(-n "$db")
    if [[ -n $user ]]; then
        [[ -n $_ZM_AUTH ]] || { _zm_err "ZEROMESH_REDIS_URL $url names user '$user' without a password"; return 1; }
        _ZM_SENTINEL_REST+=(--user "$user")
    fi
}

# -- asking the sentinels -----------------------------------------------------------------

# _zm_sentinel_resolve [quiet]: ask each sentinel in turn for the service's primary; the first
# answer becomes _ZM_PRIMARY, _ZM_CLI and _ZM_WHERE. Status 1 when none answers (with a
# message naming each sentinel and why, unless quiet).
_zm_sentinel_resolve() {
    local quiet=${1:-} s out rc why err errfile
    local -a whys=() addr=()
    errfile=$(mktemp "${TMPDIR:-/tmp}/zeromesh.err.XXXXXX") || { _zm_err "cannot make a temporary file"; return 1; }
    for s in "${_ZM_SENTINELS[@]}"; do
        out=$(_zm_sentinel_ask "$s" 2>"$errfile")
        rc=$?
        err=$(<"$errfile")
        mapfile -t addr <<<"$out"
        if ((rc == 0)) && ((${#addr[@]} == 2)) && [[ ${addr[1]} =~ ^[0-9]+$ && -n ${addr[0]} ]]; then
            _zm_sentinel_use "${addr[0]}" "${addr[1]}"
            rm -f -- "$errfile"
            return 0
        fi
        if ((rc == 124)); then
            why="no answer within ${_ZM_SENTINEL_ASK} s"
        elif ((rc == 0)); then
            why="does not know service '$_ZM_SENTINEL_SERVICE'"
        else
            why=${err//$'\n'/ }
            why=${why:-redis-cli exited with status $rc}
        fi
        whys+=("$s: ${why:0:160}")
    done
    rm -f -- "$errfile"
    [[ -n $quiet ]] && return 1
    local IFS=';'
    _zm_err "no sentinel named the primary of service '$_ZM_SENTINEL_SERVICE' ($_ZM_SENTINEL_URL):${whys[*]/#/ }"
    return 1
}

# _zm_sentinel_ask HOST:PORT: the sentinel's answer on stdout (the primary's host and port, one
# a line; nothing when it does not know the service), its errors on stderr.
_zm_sentinel_ask() {
    local -a cmd=("${_ZM_REDIS_CLI:-redis-cli}" -h "${1%:*}" -p "${1##*:}" "${_ZM_SENTINEL_TLS[@]}" -e --raw
        SENTINEL get-master-addr-by-name "$_ZM_SENTINEL_SERVICE")
    # timeout(1): redis-cli has no connect timeout, and a sentinel behind a cut network
    # would hold the command for the kernel's TCP timeout. An empty REDISCLI_AUTH would
    # still send AUTH, so it is set only for a sentinel_password.
    if [[ -n $_ZM_SENTINEL_AUTH ]]; then
        REDISCLI_AUTH=$_ZM_SENTINEL_AUTH timeout "$_ZM_SENTINEL_ASK" "${cmd[@]}"
    else
        timeout "$_ZM_SENTINEL_ASK" "${cmd[@]}"
    fi
}

_zm_sentinel_use() {  # HOST PORT: the primary every command goes to from now on
    local host=$1 port=$2
    _ZM_PRIMARY="$host:$port"
    [[ $host == *:* ]] && _ZM_PRIMARY="[$host]:$port"
    _ZM_CLI=("${_ZM_REDIS_CLI:-redis-cli}" -e --raw -D "" -h "$host" -p "$port" "${_ZM_SENTINEL_REST[@]}")
    _ZM_WHERE="primary $_ZM_PRIMARY of service '$_ZM_SENTINEL_SERVICE', from $_ZM_SENTINEL_URL"
}

# -- running a command on the primary ---------------------------------------------------------

# _zm_sentinel_try ARGS...: one redis-cli run on the current primary; stdout passes through,
# stderr lands in _ZM_REDIS_ERR. Its status.
_zm_sentinel_try() {
    { _ZM_REDIS_ERR=$(_zm_redis_run "$@" 2>&1 >&3 3>&-); } 3>&1
}

# _zm_sentinel_redis ARGS...: _zm_redis for a Sentinel URL. A connection error or READONLY
# sends the command again to whatever primary the sentinels name next, until it succeeds
# or ZM_SENTINEL_RETRY_S has passed; a change of primary is said once, naming both.
_zm_sentinel_redis() {
    local rc input='' old deadline_ms
    if [[ ${1:-} == -x || ${1:-} == -X ]]; then
        # redis-cli reads all of stdin: keep it, to send it again.
        input=$(mktemp "${TMPDIR:-/tmp}/zeromesh.in.XXXXXX") || { _zm_err "cannot make a temporary file"; return 1; }
        cat >"$input" || { rm -f -- "$input"; return 1; }
    fi
    _zm_clock
    deadline_ms=$((_ZM_NOW_MS + ZM_SENTINEL_RETRY_S * 1000))
    while :; do
        if [[ -n $input ]]; then
            _zm_sentinel_try "$@" <"$input"
        else
            _zm_sentinel_try "$@"
        fi
        rc=$?
        ((rc == 0)) && break
        [[ $_ZM_REDIS_ERR =~ $_ZM_SENTINEL_RETRY_ON ]] || break
        _zm_clock
        if ((_ZM_NOW_MS >= deadline_ms)); then
            _ZM_REDIS_ERR+=$'\n'"no reachable primary for service '$_ZM_SENTINEL_SERVICE' within ${ZM_SENTINEL_RETRY_S} s"
            break
        fi
        sleep 0.2
        old=$_ZM_PRIMARY
        _zm_sentinel_resolve quiet || continue
        if [[ $_ZM_PRIMARY != "$old" ]]; then
            _zm_err "WARNING: Redis primary $old unreachable or no longer primary; sentinel names $_ZM_PRIMARY: using it"
        fi
    done
    [[ -z $input ]] || rm -f -- "$input"
    [[ -z $_ZM_REDIS_ERR ]] || printf '%s\n' "$_ZM_REDIS_ERR" >&2
    return $rc
}
