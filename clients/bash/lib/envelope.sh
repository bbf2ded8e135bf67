# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Part of zeromesh.sh (source that file, not this one): the JSON envelope of a queued job
# (SPEC.md 16.2), built and checked with jq. Bodies and elements travel in files, since a
# bash variable cannot hold a NUL byte.

# _zm_decode's result: why the element is malformed ("" if it is not), and else its id,
# attempt, error and headers (JSON).
declare -gA _ZM_ENVELOPE=([why]='' [id]='' [attempt]=0 [error]='' [headers]='{}')

# _zm_envelope BODYFILE OUT [jq args and filter for more fields]: {"id", "body"|"body_b64", ...} on one line.
# The jq arguments must define $id and $more (an object of fields to add).
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
declare -g _ZM_JQ_DECODE='
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

# _zm_decode ELEMENTFILE BODYFILE: fills _ZM_ENVELOPE (above) and, for a good envelope,
# writes its body. BODYFILE.fields is its scratch file. Status 1 only when a file fails.
_zm_decode() {
    local elem=$1 body=$2 fields=$2.fields i
    local -a f=()
    _ZM_ENVELOPE=([why]='' [id]='' [attempt]=0 [error]='' [headers]='{}')
    if ! _zm_is_utf8 "$elem"; then
        _ZM_ENVELOPE[why]="malformed envelope: not JSON (not UTF-8)"
        return 0
    fi
    if ! jq -sj "$_ZM_JQ_DECODE" <"$elem" >"$fields" 2>/dev/null; then
        _ZM_ENVELOPE[why]="malformed envelope: not JSON"
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
    } <"$fields" || { _zm_err "cannot extract the body of an envelope"; return 1; }
    if [[ -n ${f[0]} ]]; then
        _ZM_ENVELOPE[why]="malformed envelope: ${f[0]}"
        return 0
    fi
    _ZM_ENVELOPE=([why]='' [id]=${f[1]} [attempt]=${f[2]} [error]=${f[4]} [headers]=${f[5]})
}

# The dead letter for an element that is not an envelope (SPEC.md 16.2): its bytes as the body.
_zm_malformed_letter() {  # ELEMENTFILE OUT QUEUE WHY
    local id
    id=$(_zm_new_id) || return 1
    _zm_envelope "$1" "$2" --arg id "$id" --arg e "$4" --arg q "$3" --argjson more '{}' \
        || { _zm_err "cannot build a dead letter"; return 1; }
    jq -cj --arg e "$4" --arg q "$3" '. + {error: $e, queue: $q, dead_ms: (now * 1000 | floor)}' <"$2" >"$2.x" &&
        mv -- "$2.x" "$2"
}
