#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A bash producer for the cross-language suite: pushes each FILE to zeromesh
# queue QUEUE straight into Redis (protocol/SPEC.md section 16.2), with nothing
# but redis-cli and jq, as the top README shows. Each job carries the
# application header n = the file's base name.
#
#   bash_push.sh REDIS_SOCKET QUEUE FILE...
#
# A UTF-8 body goes as {"body": ...} in redis-cli's argv (the README's form);
# any other body as {"body_b64": ...} through `redis-cli -x` on stdin, since
# one argv string may not exceed 128 KiB on Linux (a 1 MiB body is 1.4 MB of base64).
set -euo pipefail
(($# >= 2)) || { echo "usage: bash_push.sh REDIS_SOCKET QUEUE FILE..." >&2; exit 64; }
sock=$1 queue=$2
shift 2
key="zeromesh:queue:$queue"
for f in "$@"; do
    n=$(basename -- "$f")
    n=${n%.bin}
    if iconv -f UTF-8 -t UTF-8 <"$f" >/dev/null 2>&1 && (($(wc -c <"$f") <= 65536)); then
        redis-cli -e -s "$sock" rpush "$key" "$(jq -nc --rawfile b "$f" --arg n "$n" '{body: $b, headers: {n: $n}}')" >/dev/null
    else
        base64 -w0 -- "$f" | jq -Rsjc --arg n "$n" '{body_b64: ., headers: {n: $n}}' |
            redis-cli -e -s "$sock" -x rpush "$key" >/dev/null
    fi
done
