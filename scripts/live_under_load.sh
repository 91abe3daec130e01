#!/bin/sh
# The live test files RUNS times in a row (default 20) with two CPU hogs beside them, as a
# busy 2-core CI machine would be: prints one line a run and the pass count; exits 0 only
# when every run passed. `make live-under-load` (RUNS=N to change the count).
set -u
RUNS=${RUNS:-20}
PY=${PY:-.venv/bin/python}
LOGS=${LOGS:-out/live-under-load}
FILES=${FILES:-"tests/test_clock_live.py tests/test_service_live.py tests/test_service_signals.py
tests/test_service_realtime.py tests/test_service_desktop.py tests/test_service_notify.py
tests/test_midi_ports.py tests/test_din_serial.py"}
mkdir -p "$LOGS"
sh -c 'while :; do :; done' & HOG1=$!
sh -c 'while :; do :; done' & HOG2=$!
trap 'kill $HOG1 $HOG2 2>/dev/null' EXIT
trap 'exit 130' INT TERM
echo "two CPU hogs: pids $HOG1 $HOG2; logs in $LOGS"
passed=0
i=1
while [ "$i" -le "$RUNS" ]; do
    if $PY -m pytest -q -p no:cacheprovider $FILES > "$LOGS/run-$i.log" 2>&1; then
        passed=$((passed + 1)); verdict=pass
    else
        verdict=FAIL
    fi
    echo "run $i/$RUNS: $verdict ($(tail -n 1 "$LOGS/run-$i.log"))"
    i=$((i + 1))
done
echo "live tests with two CPU hogs: $passed of $RUNS runs passed"
[ "$passed" -eq "$RUNS" ]
