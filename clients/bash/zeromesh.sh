# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# zeromesh.sh: the bash client of zeromesh. Source it, then call the zm_* functions.
#
#   zm_push    QUEUE BODY|- [--raw] [--header KEY=VALUE]...    RPUSH a job; prints its id
#              [--in SECONDS | --at UNIX_MS]                     ... or schedule it for then
#   zm_scheduled QUEUE                                           DUE_MS<TAB>ID of each scheduled job
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
#
# This file loads the parts in lib/ next to it (wherever it is sourced from, through
# symlinks), each with one job:
#   lib/common.sh    defaults, errors, option parsing, the clock, job ids, scratch files
#   lib/redis.sh     ZEROMESH_REDIS_URL -> redis-cli, and the Lua scripts of SPEC 16.3
#   lib/sentinel.sh  redis+sentinel:// URLs: ask the sentinels for the primary, follow failovers
#   lib/envelope.sh  the JSON envelope of SPEC 16.2, with jq
#   lib/queue.sh     zm_push, zm_take, zm_recover
#   lib/work.sh      zm_work, the reliable consumer
#   lib/http.sh      zm_request, zm_publish
# The Lua scripts are read from protocol/redis in this repository (../../protocol/redis
# from here), or from $ZEROMESH_LUA_DIR for a client installed elsewhere.
#
# Names: zm_* and ZM_* are the public functions and settings; _zm_* functions and
# _ZM_* globals are internal. Helpers take their inputs as arguments and give results
# on stdout or in one documented _ZM_* global per result, never in their caller's locals.

# shellcheck disable=SC2317  # exit runs when the file is executed rather than sourced
if [ -z "${BASH_VERSION:-}" ]; then
    echo "zeromesh.sh: this library needs bash (source it from a bash script)" >&2
    return 1 2>/dev/null || exit 1
fi
if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
    echo "zeromesh.sh: needs bash 4.4 or later, this is $BASH_VERSION" >&2
    return 1 2>/dev/null || exit 1
fi

# The folder of FILE once symlinks are followed, absolute, on stdout. Builtins only (and
# readlink for a symlink), so that sourcing works with a bare PATH; the cd happens in the
# command substitution's subshell, never in the caller's shell.
_zm_home_of() {
    local file=$1 link hops=0
    while [[ -L $file ]] && ((hops++ < 40)) && link=$(readlink -- "$file"); do
        [[ $link == /* || $file != */* ]] || link=${file%/*}/$link
        file=$link
    done
    [[ $file == */* ]] || file=./$file
    CDPATH='' cd -P -- "${file%/*}/" && pwd -P
}

# declare -g: this file may be sourced inside a function (bats' setup does it).
declare -g _ZM_HOME=''     # the folder of this file, for its parts
declare -g _ZM_LUA_DIR=''  # the folder of the Lua scripts
_ZM_HOME=$(_zm_home_of "${BASH_SOURCE[0]}") || {
    echo "zeromesh.sh: cannot find the folder of ${BASH_SOURCE[0]}" >&2
    return 1 2>/dev/null || exit 1
}
_ZM_LUA_DIR=${ZEROMESH_LUA_DIR:-$_ZM_HOME/../../protocol/redis}
[[ ! -d $_ZM_LUA_DIR ]] || _ZM_LUA_DIR=$(CDPATH='' cd -P -- "$_ZM_LUA_DIR" && pwd -P)

# shellcheck source=lib/common.sh
source "$_ZM_HOME/lib/common.sh" &&
    # shellcheck source=lib/redis.sh
    source "$_ZM_HOME/lib/redis.sh" &&
    # shellcheck source=lib/sentinel.sh
    source "$_ZM_HOME/lib/sentinel.sh" &&
    # shellcheck source=lib/envelope.sh
    source "$_ZM_HOME/lib/envelope.sh" &&
    # shellcheck source=lib/queue.sh
    source "$_ZM_HOME/lib/queue.sh" &&
    # shellcheck source=lib/work.sh
    source "$_ZM_HOME/lib/work.sh" &&
    # shellcheck source=lib/http.sh
    source "$_ZM_HOME/lib/http.sh" &&
    _zm_load_scripts "$_ZM_LUA_DIR" || {
    echo "zeromesh.sh: could not load the bash client from $_ZM_HOME" >&2
    return 1 2>/dev/null || exit 1
}
