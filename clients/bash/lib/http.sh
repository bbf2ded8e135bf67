# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Part of zeromesh.sh (source that file, not this one): zm_request and zm_publish, with
# curl through the HTTP edge (SPEC.md section 17) at $ZEROMESH_HTTP (default 127.0.0.1:8080).

declare -g _ZM_HTTP_STATUS=''   # _zm_http: the response's status code (empty when none came)

_zm_edge_url() {  # PATH -> the edge's URL for it, on stdout
    local base=${ZEROMESH_HTTP:-127.0.0.1:8080}
    [[ $base == http://* || $base == https://* ]] || base="http://$base"
    printf '%s\n' "${base%/}$1"
}

# _zm_http TMP METHOD PATH BODYFILE|"" TIMEOUT_S [curl args]: the response body in TMP/out,
# the status in _ZM_HTTP_STATUS; returns 0 (2xx/3xx), 1, 2 (timeout) or 3 (503).
_zm_http() {
    local tmp=$1 method=$2 path=$3 body=$4 timeout=$5 url rc
    shift 5
    url=$(_zm_edge_url "$path")
    local -a args=(-sS -X "$method" --max-time "$timeout" -o "$tmp/out" -D "$tmp/headers"
        -w '%{http_code}' "$@")
    [[ -n $body ]] && args+=(--data-binary "@$body")
    _ZM_HTTP_STATUS=$(curl "${args[@]}" -- "$url")
    rc=$?
    if ((rc == 28)); then
        _zm_err "$method $path: no answer from the edge within $timeout s"
        return 2
    elif ((rc == 7)); then
        _zm_err "$method $path: cannot connect to the edge at $url (set ZEROMESH_HTTP=host:port)"
        return 1
    elif ((rc != 0)); then
        _zm_err "$method $path: curl failed with status $rc (edge at $url)"
        return 1
    fi
    ((_ZM_HTTP_STATUS < 400)) && return 0
    local retry='' line
    while IFS='' read -r line; do
        [[ ${line,,} =~ ^retry-after:[[:space:]]*([0-9]+) ]] && retry=${BASH_REMATCH[1]}
    done <"$tmp/headers"
    case $_ZM_HTTP_STATUS in
    503) _zm_err "$method $path: HTTP 503 Service Unavailable: no worker serves it${retry:+ (retry after $retry s)}" ;;
    504) _zm_err "$method $path: HTTP 504 Gateway Timeout: no answer by the route's deadline" ;;
    *) _zm_err "$method $path: HTTP $_ZM_HTTP_STATUS" ;;
    esac
    if [[ -s $tmp/out ]]; then
        head -c 2000 "$tmp/out" >&2
        [[ $(tail -c 1 "$tmp/out") == "" ]] || echo >&2
    fi
    case $_ZM_HTTP_STATUS in
    503) return 3 ;;
    504) return 2 ;;
    *) return 1 ;;
    esac
}

# -- zm_request ----------------------------------------------------------------------

zm_request() {
    local -
    set +e -u -o pipefail
    _ZM_VERB=zm_request
    _zm_getopts "method: timeout: header+" "$@" || return
    local method=${_ZM_OPT[method]-} timeout=${_ZM_OPT[timeout]-$ZM_HTTP_TIMEOUT_S} path h rc timeout_ms
    local -a args=("${_ZM_ARGS[@]}") hargs=()
    ((${#args[@]} == 1 || ${#args[@]} == 2)) || {
        _zm_usage "zm_request PATH [BODY|-] [--method M] [--timeout SECONDS] [--header 'Name: value']..."
        return
    }
    path=${args[0]}
    [[ $path == /* ]] || { _zm_err "the path must start with /, got '$path'"; return 64; }
    [[ -n $method ]] || { ((${#args[@]} == 2)) && method=POST || method=GET; }
    [[ $method =~ ^[A-Za-z]+$ ]] || { _zm_err "--method must be an HTTP method, got '$method'"; return 64; }
    timeout_ms=$(_zm_seconds_opt timeout "$timeout") || return
    ((timeout_ms > 0)) || { _zm_err "--timeout must be more than 0"; return 64; }
    for h in "${_ZM_OPT_LIST[@]}"; do
        [[ $h == ?*:* && $h != *$'\n'* && $h != *$'\r'* ]] || { _zm_err "--header wants 'Name: value', got '$h'"; return 64; }
        hargs+=(-H "$h")
    done
    _zm_need curl || return 1
    _zm_mktemp || return 1
    _zm_request_in "$_ZM_TMP" "${method^^}" "$path" "$timeout" "$((${#args[@]} - 1))" "${args[1]-}" "${hargs[@]}"
    rc=$?
    rm -rf -- "$_ZM_TMP"
    return $rc
}

_zm_request_in() {  # TMP METHOD PATH TIMEOUT_S HAS_BODY(0|1) BODY|- CURL_HEADER_ARGS...
    local tmp=$1 method=$2 path=$3 timeout=$4 has_body=$5 body=$6 bodyfile=''
    shift 6
    local -a hargs=("$@")
    if ((has_body)); then
        _zm_body_to "$body" "$tmp/body" || return 1
        bodyfile=$tmp/body
        [[ ${hargs[*],,} == *"content-type:"* ]] || hargs+=(-H 'Content-Type: application/octet-stream')
    fi
    _zm_http "$tmp" "$method" "$path" "$bodyfile" "$timeout" "${hargs[@]}" || return
    cat "$tmp/out"
}

# -- zm_publish ----------------------------------------------------------------------
# POST /publish/TOPIC through the edge, whose route `topic = "{topic}"` publishes the body.

zm_publish() {
    local -
    set +e -u -o pipefail
    _ZM_VERB=zm_publish
    _zm_getopts "timeout:" "$@" || return
    local timeout=${_ZM_OPT[timeout]-$ZM_HTTP_TIMEOUT_S} timeout_ms rc
    local -a args=("${_ZM_ARGS[@]}")
    ((${#args[@]} == 2)) || { _zm_usage "zm_publish TOPIC BODY|- [--timeout SECONDS]"; return; }
    _zm_check_name topic "${args[0]}" || return
    timeout_ms=$(_zm_seconds_opt timeout "$timeout") || return
    ((timeout_ms > 0)) || { _zm_err "--timeout must be more than 0"; return 64; }
    _zm_need curl jq || return 1
    _zm_mktemp || return 1
    _zm_publish_in "$_ZM_TMP" "$timeout" "${args[@]}"
    rc=$?
    rm -rf -- "$_ZM_TMP"
    return $rc
}

_zm_publish_in() {  # TMP TIMEOUT_S TOPIC BODY|-
    local tmp=$1 timeout=$2 topic path id rc
    _zm_body_to "$4" "$tmp/body" || return 1
    topic=$(jq -rn --arg t "$3" '$t | @uri') || return 1
    path=/publish/$topic
    _zm_http "$tmp" POST "$path" "$tmp/body" "$timeout" -H 'Content-Type: application/octet-stream'
    rc=$?
    if ((rc != 0)); then
        [[ $_ZM_HTTP_STATUS == 404 || $_ZM_HTTP_STATUS == 405 ]] && _zm_err "does the edge's route table publish? it needs" \
            "[[route]] name = \"publish\", method = \"POST\", path = \"/publish/{topic}\", topic = \"{topic}\""
        return "$rc"
    fi
    if [[ $_ZM_HTTP_STATUS != 202 ]] || ! id=$(jq -er '.id | strings' <"$tmp/out" 2>/dev/null); then
        _zm_err "POST $path: expected 202 with {\"id\": ...}, got HTTP $_ZM_HTTP_STATUS: $(head -c 200 "$tmp/out")"
        return 1
    fi
    printf '%s\n' "$id"
}
