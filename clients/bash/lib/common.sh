# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Part of zeromesh.sh (source that file, not this one): the defaults, errors, option
# parsing, checks of values, the clock, job ids and scratch files every verb uses.

# -- defaults (SPEC.md section 16) --------------------------------------------

ZM_DEFAULT_MAX_ATTEMPTS=5     # deliveries before a job goes to the dead letters
ZM_HEARTBEAT_S=5              # a consumer refreshes its score this often (the SPEC asks for <= 10 s)
ZM_RECOVERY_S=30              # a consumer silent this long is dead (zm_recover's default)
ZM_BLOCK_S=2                  # longest single BLMOVE: how late a heartbeat or a stop may be
ZM_HTTP_TIMEOUT_S=30          # zm_request / zm_publish default; the edge answers 504 at the route's own deadline

# -- the globals this part owns ---------------------------------------------------
# declare -g: zeromesh.sh may be sourced inside a function (bats' setup does it).

declare -g _ZM_VERB=''         # the zm_* function running, which prefixes its messages; each one sets it first
declare -gA _ZM_OPT=()         # _zm_getopts: option name -> value (1 for a flag); unset when not given
declare -ga _ZM_OPT_LIST=()    # _zm_getopts: the values of the spec's repeatable option, in order
declare -ga _ZM_ARGS=()        # _zm_getopts: the positional arguments
declare -g _ZM_NOW_MS=0        # _zm_clock: unix time in milliseconds
declare -g _ZM_NOW_S=0         # _zm_clock: the same as seconds with 3 decimals (sorted-set scores)
declare -g _ZM_TMP=''          # _zm_mktemp: the scratch folder of the verb running, removed when it returns

# -- errors ---------------------------------------------------------------------------

_zm_err() { printf '%s: %s\n' "${_ZM_VERB:-zeromesh}" "$*" >&2; }

_zm_usage() { _zm_err "usage: $*"; return 64; }

# -- options ---------------------------------------------------------------------------

# _zm_getopts SPEC ARGS...: SPEC names the options, "name" a flag, "name:" one value (the
# last one given wins), "name+" a repeatable value (at most one such option per SPEC).
# Results in _ZM_OPT, _ZM_OPT_LIST and _ZM_ARGS (above); status 64 on a usage error.
_zm_getopts() {
    local spec=" $1 " arg name value has_value
    shift
    _ZM_OPT=() _ZM_OPT_LIST=() _ZM_ARGS=()
    while (($#)); do
        arg=$1
        shift
        case $arg in
        --)
            _ZM_ARGS+=("$@")
            return 0
            ;;
        --?*)
            name=${arg#--} value='' has_value=0
            if [[ $name == *=* ]]; then
                value=${name#*=} name=${name%%=*} has_value=1
            fi
            if [[ $spec == *" $name: "* || $spec == *" $name+ "* ]]; then
                if ((!has_value)); then
                    (($#)) || { _zm_err "option --$name needs a value"; return 64; }
                    value=$1
                    shift
                fi
                if [[ $spec == *" $name+ "* ]]; then
                    _ZM_OPT_LIST+=("$value")
                else
                    _ZM_OPT[$name]=$value
                fi
            elif [[ $spec == *" $name "* ]]; then
                ((!has_value)) || { _zm_err "option --$name takes no value"; return 64; }
                _ZM_OPT[$name]=1
            else
                _zm_err "unknown option $arg (write -- before a body that starts with --)"
                return 64
            fi
            ;;
        *) _ZM_ARGS+=("$arg") ;;
        esac
    done
}

# Seconds (like 1.5) -> milliseconds on stdout; fails on anything but a non-negative decimal.
_zm_ms() {
    local int frac
    [[ $1 =~ ^([0-9]{1,9})(\.([0-9]*))?$ ]] || return 1
    int=${BASH_REMATCH[1]} frac=${BASH_REMATCH[3]}000
    printf '%d\n' $((10#$int * 1000 + 10#${frac:0:3}))
}

_zm_seconds_opt() {  # NAME VALUE: checks a --timeout-like option; its milliseconds on stdout
    _zm_ms "$2" || { _zm_err "--$1 must be a number of seconds, got '$2'"; return 64; }
}

_zm_count_opt() {  # NAME VALUE MIN
    if [[ ! $2 =~ ^[0-9]{1,9}$ ]] || ((10#$2 < $3)); then
        _zm_err "--$1 must be a whole number >= $3, got '$2'"
        return 64
    fi
}

_zm_check_name() {  # KIND NAME: queue names and such are 1..255 bytes
    local LC_ALL=C
    ((${#2} >= 1 && ${#2} <= 255)) || { _zm_err "$1 must be 1..255 bytes, got '${2:0:40}'"; return 64; }
}

# -- tools -------------------------------------------------------------------------------

_zm_need() {  # TOOL...: each must be on PATH
    local tool missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        _zm_err "missing ${missing[*]}: the bash client needs bash, redis-cli (7+), jq, curl, coreutils and iconv"
        return 1
    fi
}

# -- time and ids -------------------------------------------------------------------------

# Unix time now, in _ZM_NOW_MS and _ZM_NOW_S (globals: the work loop reads the clock once a
# turn, and a command substitution would fork for each).
_zm_clock() {
    local us=${EPOCHREALTIME:-}
    us=${us//[!0-9]/}  # EPOCHREALTIME's separator follows the locale
    if [[ -z $us ]]; then
        us=$(date +%s%N) || return 1
        us=${us:0:16}
    fi
    _ZM_NOW_MS=$((10#$us / 1000))
    printf -v _ZM_NOW_S '%d.%03d' $((_ZM_NOW_MS / 1000)) $((_ZM_NOW_MS % 1000))
}

_zm_fmt_s() {  # MILLISECONDS -> "S.mmm" on stdout
    printf '%d.%03d\n' $(($1 / 1000)) $(($1 % 1000))
}

# A job id on stdout: this host, the time in nanoseconds and 30 random bits (SPEC.md 2.3).
_zm_new_id() {
    local ns
    ns=$(date +%s%N) || return 1
    [[ $ns =~ ^[0-9]+$ ]] || ns=$(date +%s)000000000
    printf '%s-%x-%04x%04x\n' "${HOSTNAME:-$(hostname)}" "$ns" "$RANDOM" "$RANDOM"
}

# -- bytes and files -------------------------------------------------------------------------

_zm_bytes() {  # STRING: its length in bytes on stdout
    local LC_ALL=C
    printf '%d\n' "${#1}"
}

_zm_is_utf8() { iconv -f UTF-8 -t UTF-8 <"$1" >/dev/null 2>&1; }

_zm_mktemp() {  # a new scratch folder, in _ZM_TMP
    _ZM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/zeromesh.XXXXXX") || { _zm_err "cannot make a temporary folder"; return 1; }
}

# BODY|- FILE: standard input ("-") or the argument, byte for byte, into FILE.
_zm_body_to() {
    if [[ $1 == - ]]; then
        cat >"$2" || { _zm_err "cannot read the body from standard input"; return 1; }
    else
        printf '%s' "$1" >"$2"
    fi
}
