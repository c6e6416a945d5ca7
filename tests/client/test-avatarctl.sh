#!/bin/bash
# SPDX-License-Identifier: MIT
# avatarctl's argument handling, output and exit codes against fake-avatard.
# Usage: test-avatarctl.sh AVATARCTL FAKE-AVATARD
set -u

ctl=$1
fake=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/avatarctl-test.XXXXXX")
sock=$dir/avatard.sock
failures=0
passes=0
fake_pid=

cleanup() {
        if [ -n "$fake_pid" ]; then
                kill "$fake_pid" 2>/dev/null
                wait "$fake_pid" 2>/dev/null
        fi
        rm -rf "$dir"
}
trap cleanup EXIT

# expect CODE ARGS...: runs avatarctl, keeps stdout/stderr in $out/$err, checks the status.
expect() {
        local want=$1 got
        shift
        "$ctl" "$@" >"$dir/out" 2>"$dir/err" </dev/null
        got=$?
        out=$(cat "$dir/out")
        err=$(cat "$dir/err")
        if [ "$got" != "$want" ]; then
                echo "FAIL: avatarctl $* exited $got, expected $want; stderr: $err"
                failures=$((failures + 1))
                return 1
        fi
        passes=$((passes + 1))
        return 0
}

# contains WHAT TEXT: checks that TEXT holds WHAT.
contains() {
        case "$2" in
        *"$1"*) passes=$((passes + 1)) ;;
        *) echo "FAIL: expected '$1' in: $2"; failures=$((failures + 1)) ;;
        esac
}

# same WANT GOT WHAT: checks that GOT is exactly WANT.
same() {
        if [ "$1" = "$2" ]; then
                passes=$((passes + 1))
        else
                echo "FAIL: $3: expected '$1', got '$2'"
                failures=$((failures + 1))
        fi
}

"$fake" "$sock" &
fake_pid=$!
for _ in $(seq 100); do
        [ -S "$sock" ] && break
        sleep 0.05
done
[ -S "$sock" ] || { echo "fake-avatard did not start"; echo "RESULT: avatarctl passed=0 failed=1"; exit 1; }

export AVATARD_SOCKET=$sock

# Usage.
expect 0 --help && contains "Exit codes:" "$out"
expect 0 --version && contains "avatarctl " "$out"
expect 2
expect 2 bogus && contains "unknown command 'bogus'" "$err"
expect 2 --bogus status
expect 2 status --bogus
expect 2 status extra-argument
expect 2 --timeout abc status
expect 2 --timeout -1 status
expect 2 --socket
expect 2 call
expect 2 call echo '{not json'
expect 2 call echo '42'
expect 0 help call && contains "--file PATH" "$out"
expect 0 call --help && contains "--out PATH" "$out"

# Output when piped: compact JSON.
expect 0 status && contains '"protocol_version":1' "$out"
expect 0 status --json && contains '"pid":4242' "$out"
expect 0 methods && contains '{"name":"daemon.status","summary":"Daemon status and counters"}' "$out"
expect 0 methods manager.get_last_jobs && contains '"name":"count"' "$out"
expect 6 methods no.such.method && contains "no method named 'no.such.method'" "$err"
expect 0 call echo '{"a":"b/c"}' && same '{"a":"b/c"}' "$out" "call echo output"
printf '[1,2]' >"$dir/params"
"$ctl" call echo - <"$dir/params" >"$dir/out"
same 0 $? "params from stdin: exit status"
same '[1,2]' "$(cat "$dir/out")" "params from stdin: output"

# Human output, on a pseudo-terminal when script(1) is there to make one.
if command -v script >/dev/null 2>&1; then
        human() { script -qec "$(printf '%q ' "$ctl" "$@")" /dev/null </dev/null | tr -d '\r'; }
        out=$(human status)
        contains "Uptime:      1h 2m 3s" "$out"
        contains "daemon.status  5" "$out"
        contains "Errors:      none" "$out"
        contains "Max frame bytes: 1048576" "$out"
        contains "Base url: http://127.0.0.1:1" "$out"
        out=$(human methods)
        contains "METHOD" "$out"
        contains "manager.get_last_jobs  The most recent jobs" "$out"
        out=$(human methods manager.get_last_jobs)
        contains "count     integer" "$out"
        contains "How many; default: 1" "$out"
        contains "one of: en, fr" "$out"
        contains "string(uuid)[]" "$out"
        contains "Result: jobs (Jobs)" "$out"
        out=$(human methods runner.add_table)
        contains "table  object  yes       The table, by descriptor" "$out"
        contains "Descriptors: accepted" "$out"
        out=$(human call echo '{"a":[1]}')
        contains '"a": [' "$out"
fi

# Global options after the command, --socket over $AVATARD_SOCKET.
AVATARD_SOCKET=$dir/nope.sock expect 0 status --socket "$sock"
expect 3 --socket "$dir/nope.sock" status && contains "cannot connect to $dir/nope.sock" "$err"

# Error classes and exit codes.
for pair in -32602:2 -32601:2 -32600:2 -32603:1 -32000:7 -32001:7 -32002:7 -32003:7 \
            -32004:5 -32005:6 -32006:9 -32007:7 -32008:10 -32009:9 -32010:9 -32011:4 \
            -32012:7 -32013:8 -32014:7 -32015:1 -32016:10 -32017:7; do
        expect "${pair#*:}" call fail "{\"code\":${pair%%:*}}"
done
expect 8 call fail '{"code":-32099,"name":"job_failed"}'
expect 1 call fail '{"code":-32099}'
expect 9 call fail '{"code":-32006,"name":"ambiguous","message":"2 runs named x","data":{"candidates":[{"id":"r1"},{"id":"r2"}]}}'
contains "avatarctl: fail: 2 runs named x (ambiguous)" "$err"
contains '- {"id":"r2"}' "$err"
expect 2 call no.such.method && contains "(method_not_found)" "$err"
expect 4 --timeout 0.2 call never && contains "timeout" "$err"
expect 3 call close_mid

# Descriptors.
printf 'a,b\n1,2\n' >"$dir/in.csv"
expect 0 call fds --file "$dir/in.csv" --out "$dir/out.txt" && contains '"n_fds":2' "$out"
contains 'written by fake' "$(cat "$dir/out.txt")"
expect 2 call fds --file "$dir/missing.csv"
expect 6 call fail '{"code":-32005}' --out "$dir/created.txt"
same no "$([ -e "$dir/created.txt" ] && echo yes || echo no)" "--out file left behind after a failed call"

echo "RESULT: avatarctl passed=$passes failed=$failures"
[ "$failures" -eq 0 ]
