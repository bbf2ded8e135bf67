#!/usr/bin/env bash
# Run test commands at the same time, each with its own log; when all have ended, show the
# logs, the failed ones last (so the end of the output is the failure), and fail if any failed.
# Usage: tests/run_together.sh LOG_DIR NAME=COMMAND...
set -u
dir=$1
shift
mkdir -p "$dir"
names=()
pids=()
for spec in "$@"; do
  name=${spec%%=*}
  echo "started $name: ${spec#*=}  (log: $dir/$name.log)"
  bash -c "${spec#*=}" >"$dir/$name.log" 2>&1 &
  names+=("$name")
  pids+=($!)
done
codes=()
for pid in "${pids[@]}"; do
  wait "$pid"
  codes+=($?)
done
failed=0
for i in "${!names[@]}"; do
  if [ "${codes[$i]}" -eq 0 ]; then
    echo "== ${names[$i]}: passed"
    cat "$dir/${names[$i]}.log"
  fi
done
for i in "${!names[@]}"; do
  if [ "${codes[$i]}" -ne 0 ]; then
    echo "== ${names[$i]}: FAILED (exit ${codes[$i]})"
    cat "$dir/${names[$i]}.log"
    failed=1
  fi
done
exit $failed
