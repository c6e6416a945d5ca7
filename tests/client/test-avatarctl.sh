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
        expect_stdin /dev/null "$@"
}

# expect_stdin FILE CODE ARGS...: expect, with stdin from FILE.
expect_stdin() {
        local input=$1 want=$2 got
        shift 2
        "$ctl" "$@" >"$dir/out" 2>"$dir/err" <"$input"
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

# lacks WHAT TEXT: checks that TEXT does not hold WHAT.
lacks() {
        case "$2" in
        *"$1"*) echo "FAIL: did not expect '$1' in: $2"; failures=$((failures + 1)) ;;
        *) passes=$((passes + 1)) ;;
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
# Times print in local time: make it the same everywhere.
export TZ=UTC

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

# ---- Manager commands ---------------------------------------------------------------------
# fake-avatard answers manager.* like the daemon, reports what it received (fake.requests) and
# can be told to answer otherwise (fake.script).

run_id=9b1d5c7e-1111-4a4a-8b8b-000000000001
key_id=11111111-aaaa-4bbb-8ccc-000000000001

# requests: what fake-avatard received since the last look, as compact JSON, in $req.
requests() {
        req=$("$ctl" call fake.requests 2>&1)
}

# sent METHOD PARAMS: checks that the previous command made exactly one call, METHOD with PARAMS.
sent() {
        requests
        same "[{\"method\":\"$1\",\"params\":$2}]" "$req" "what avatarctl $1 sent"
}

# nothing_sent WHAT: checks that nothing reached the daemon since the last look.
nothing_sent() {
        requests
        same "[]" "$req" "$1: nothing sent"
}

# answer METHOD [MEMBERS]: how fake-avatard answers METHOD from now on, e.g.
# answer manager.get_health '"result":{"x":1}'; without MEMBERS, back to its default.
answer() {
        if ! "$ctl" call fake.script "{\"method\":\"$1\"${2:+,$2}}" >/dev/null; then
                echo "FAIL: fake.script $1 $2"
                failures=$((failures + 1))
        fi
}

# Usage and help.
expect 0 --help
contains "apikey create --name NAME --days DAYS [--store]" "$out"
contains "runs delete NAME | --id UUID" "$out"
contains "jobs delete NAME...|-" "$out"
expect 0 help jobs && contains "--include-deleted    deleted jobs too" "$out"
contains "manager.get_last_jobs" "$out"
expect 0 help login && contains "never from the command line" "$out"
expect 0 jobs delete --help && contains "Usage: avatarctl jobs delete NAME...|-" "$out"
expect 0 help runs delete && contains "--id UUID" "$out"
expect 2 runs && contains "'runs' needs a subcommand: find delete" "$err"
expect 2 apikey && contains "create list revoke" "$err"
expect 2 password && contains "forgot reset" "$err"
expect 2 help runs nothing

# Arguments are checked before anything is sent (or a password asked for).
requests
printf 'pw\n' >"$dir/pw1"
expect 2 health extra
expect 2 compat --bogus
expect 2 login
expect 2 login alice bob
expect 2 login alice --password hunter2 && lacks hunter2 "$err"
expect 2 login alice --password=hunter2 && lacks hunter2 "$err"
contains "option '--password' takes no argument" "$err"
expect 2 login alice --password-stdin=hunter2 && lacks hunter2 "$err"
expect 2 login alice && contains "no password given" "$err"
printf '\n' >"$dir/empty-line"
expect_stdin "$dir/empty-line" 2 login alice && contains "the password is empty" "$err"
expect_stdin "$dir/pw1" 2 login ''
expect 2 password forgot
expect 2 password forgot a@b.c d@e.f
expect_stdin "$dir/pw1" 2 password reset a@b.c && contains "--token UUID is required" "$err"
expect_stdin "$dir/pw1" 2 password reset a@b.c --token not-a-uuid && contains "expected a UUID" "$err"
printf 'one\ntwo\n' >"$dir/pw-differ"
expect_stdin "$dir/pw-differ" 2 password reset a@b.c --token "$run_id" && contains "differ" "$err"
lacks one "$err"
expect_stdin "$dir/pw1" 2 password reset a@b.c --token "$run_id" && contains "no password given" "$err"
expect 2 apikey create --name ci && contains "--name NAME and --days DAYS are required" "$err"
expect 2 apikey create --days 30
expect 2 apikey create --name ci --days 31 && contains "expected 30, 60, 120, 365 or 3650, got 31" "$err"
expect 2 apikey create --name ci --days 1y
expect 2 apikey create --name '' --days 30
expect 2 apikey create --name "$(printf 'k%.0s' $(seq 256))" --days 30
expect 2 apikey list extra
expect 2 apikey revoke
expect 2 apikey revoke 42 && contains "expected an API key id (a UUID" "$err"
expect 2 jobs extra
expect 2 jobs --last 0
expect 2 jobs --last 100001
expect 2 jobs --last 5 --kind standard && contains "--last takes no filter" "$err"
expect 2 jobs --last 5 --include-deleted
expect 2 jobs --kind bogus && contains "--kind: expected standard, privacy_metrics" "$err"
expect 2 jobs --name iris --set "$run_id" && contains "exclude each other" "$err"
expect 2 jobs --set iris && contains "--set: expected a run id (a UUID)" "$err"
expect 2 jobs --limit 0
expect 2 jobs --limit many
expect 2 job
expect 2 job a b
expect 2 job "$(printf 'j%.0s' $(seq 257))"
expect 2 results extra
expect 2 results --last 0
expect 2 results --last 101
expect 2 runs find
expect 2 runs find ''
expect 2 runs delete && contains "either a run's display name or --id UUID" "$err"
expect 2 runs delete iris --id "$run_id"
expect 2 runs delete --id iris && contains "--id: expected a run id (a UUID)" "$err"
expect 2 runs delete a b
expect 2 jobs delete
expect 2 jobs delete '' && contains "expected job names of 1 to 256 characters" "$err"
expect 2 jobs delete "$(printf 'j%.0s' $(seq 257))"
expect 2 jobs delete - && contains "no job names given" "$err"
expect_stdin "$dir/pw1" 2 jobs delete - - && contains "- may be given only once" "$err"
nothing_sent "commands with bad arguments"

# What each command sends, and its output when piped: the daemon's result, unchanged.
expect 0 health && same '{"message":"ok","stale":false,"age_s":0.5}' "$out" "health output"
sent manager.get_health null
expect 0 compat && contains '"status":"compatible"' "$out"
sent manager.verify_compatibility null
expect 0 compat --refresh
sent manager.verify_compatibility '{"refresh":true}'

printf 's3cret pass\n' >"$dir/pw"
expect_stdin "$dir/pw" 0 login alice
sent manager.authenticate '{"username":"alice","password":"s3cret pass"}'
contains '"authenticated":true' "$out"
contains "avatarctl: warning: Username/password authentication is deprecated" "$err"
lacks s3cret "$out$err"
printf 'pass\r\nsecond line\n' >"$dir/pw-crlf"
expect_stdin "$dir/pw-crlf" 0 login alice --password-stdin --json
sent manager.authenticate '{"username":"alice","password":"pass"}'
answer manager.authenticate '"error":{"code":-32009,"message":"The daemon uses an API key; login is refused","data":{"name":"conflict","retryable":false}}'
expect_stdin "$dir/pw" 9 login alice
contains "avatarctl: manager.authenticate: The daemon uses an API key; login is refused (conflict)" "$err"
lacks s3cret "$out$err"
answer manager.authenticate
requests

expect 0 password forgot a@b.c && same '{"sent":true}' "$out" "password forgot output"
sent manager.forgotten_password '{"email":"a@b.c"}'
printf 'n3w-pass\nn3w-pass\n' >"$dir/pw-twice"
expect_stdin "$dir/pw-twice" 0 password reset a@b.c --token "$run_id"
same '{"reset":true}' "$out" "password reset output"
sent manager.reset_password "{\"email\":\"a@b.c\",\"new_password\":\"n3w-pass\",\"new_password_repeated\":\"n3w-pass\",\"token\":\"$run_id\"}"
lacks n3w-pass "$out$err"

expect 0 apikey create --name ci --days 365
contains '"plaintext":"avk_fake_PLAINTEXT_0123456789"' "$out"
sent manager.create_api_key '{"name":"ci","expiration_days":365}'
expect 0 apikey create --days 3650 --store --name "ci key"
lacks PLAINTEXT "$out" && contains '"stored":true' "$out"
sent manager.create_api_key '{"name":"ci key","expiration_days":3650,"store":true}'
expect 0 apikey list && contains '"api_keys":[{"id":"'"$key_id"'"' "$out"
sent manager.list_api_keys null
expect 0 apikey revoke "$key_id"
same "{\"revoked\":true,\"api_key_id\":\"$key_id\",\"response\":null}" "$out" "apikey revoke output"
sent manager.revoke_api_key "{\"api_key_id\":\"$key_id\"}"

expect 0 jobs
jobs_json=$out
sent manager.get_jobs null
expect 0 call manager.get_jobs && same "$out" "$jobs_json" "jobs prints what manager.get_jobs returns"
requests
expect 0 jobs --kind standard --kind report --kind standard --name iris --limit 5 --include-deleted
sent manager.get_jobs '{"kind":["standard","report"],"display_name":"iris","limit":5,"include_deleted":true}'
expect 0 jobs --set "$run_id" --kind advice
sent manager.get_jobs "{\"kind\":[\"advice\"],\"set_name\":\"$run_id\"}"
expect 0 jobs --last 2 && contains '"jobs":{"job-report-3":{' "$out"
sent manager.get_last_jobs '{"count":2}'
expect 0 job job-standard-1 && contains '"progress":1.0' "$out"
sent manager.get_job '{"name":"job-standard-1"}'
expect 0 results && contains '"results":[{"job":"job-standard-1"' "$out"
sent manager.get_last_results null
expect 0 results --last 2
sent manager.get_last_results '{"count":2}'
expect 0 runs find iris && contains "\"runs\":[{\"set_name\":\"$run_id\"" "$out"
sent manager.find_ids_by_name '{"set_name":"iris"}'
expect 0 runs delete iris && contains '"batches":1' "$out"
sent manager.delete_job '{"name":"iris"}'
expect 0 runs delete --id "$run_id"
sent manager.delete_job_by_id "{\"id\":\"$run_id\"}"
expect 0 jobs delete a b && contains '"deleted_jobs":[{"name":"a"' "$out"
sent manager.delete_jobs '{"job_names":["a","b"]}'
printf '  x1 \n\n\tx2\r\n' >"$dir/names"
expect_stdin "$dir/names" 0 jobs delete first - last
sent manager.delete_jobs '{"job_names":["first","x1","x2","last"]}'

# Deletions that leave jobs behind exit non-zero, with the result still printed.
expect 1 jobs delete a fail-b c && contains '"failed_jobs":["fail-b"]' "$out"
requests
batch_error='{"deleted_jobs":[],"failed_jobs":["n1","n2","n3","n4","n5","n6"],"errors":[{"job_names":["n1","n2","n3","n4","n5","n6"],"code":-32001,"name":"upstream_http_error","message":"Bad request","status":422}],"batches":1}'
answer manager.delete_jobs "\"result\":$batch_error"
expect 7 jobs delete n1 n2 n3 n4 n5 n6 && same "$batch_error" "$out" "jobs delete output with a failed batch"
answer manager.delete_jobs
requests

# A list too long for one line goes in several calls of whole 100-name batches, merged.
pad=$(printf 'x%.0s' $(seq 141))
for i in $(seq 2500); do printf 'job-%04d-%s\n' "$i" "$pad"; done >"$dir/many"
expect_stdin "$dir/many" 0 jobs delete -
contains '"batches":25' "$out"
same 2500 "$(grep -o '"status":"finished"' <<<"$out" | wc -l)" "jobs deleted over several calls"
requests
same 2 "$(grep -o '"method":"manager.delete_jobs"' <<<"$req" | wc -l)" "calls for 2500 long names"
contains "\"params\":{\"job_names\":[\"job-1701-$pad\"" "$req"
answer manager.delete_jobs '"skip":1,"error":{"code":-32000,"message":"upstream down","data":{"name":"upstream_unreachable","retryable":true}}'
expect_stdin "$dir/many" 7 jobs delete -
contains "avatarctl: manager.delete_jobs: upstream down (upstream_unreachable)" "$err"
contains '"batches":17' "$out"
contains "\"failed_jobs\":[\"job-1701-$pad\"" "$out"
contains '"code":-32000,"name":"upstream_unreachable","message":"upstream down"' "$out"
answer manager.delete_jobs '"error":{"code":-32004,"message":"Permission denied: the method needs the operate role","data":{"name":"permission_denied","retryable":false,"required_role":"operate"}}'
expect 5 jobs delete a && same "" "$out" "output of a deletion refused as a whole"
contains "required_role: operate" "$err"
answer manager.delete_jobs
requests

# Errors: one line, the useful data, the exit code of the class.
answer manager.get_job '"error":{"code":-32005,"message":"No job named x","data":{"name":"not_found","retryable":false}}'
expect 6 job x && same "avatarctl: manager.get_job: No job named x (not_found)" "$err" "not found error line"
answer manager.get_job '"error":{"code":-32005,"message":"First line:\n  second line\n  third line","data":{"name":"not_found","retryable":false}}'
expect 6 job x && contains "manager.get_job: First line (not_found)" "$err"
contains "  second line" "$err"
answer manager.get_job
answer manager.verify_compatibility '"error":{"code":-32003,"message":"The Avatar server says this client is incompatible.","data":{"name":"incompatible","retryable":false,"status":"incompatible","most_recent_compatible_client":"1.4.0"}}'
expect 7 compat && contains "most_recent_compatible_client: 1.4.0" "$err"
answer manager.verify_compatibility
answer manager.get_health '"error":{"code":-32012,"message":"The daemon holds no credential","data":{"name":"not_authenticated","retryable":false}}'
expect 7 health && contains "(not_authenticated)" "$err"
answer manager.get_health
ambiguous='"error":{"code":-32006,"message":"Multiple runs found for display name '"'"'iris'"'"'. Delete the desired run by id:\n  manager.delete_job_by_id {\"id\": \"a\"}","data":{"name":"ambiguous","retryable":false,"candidates":[{"set_name":"'"$run_id"'","created_at":"2026-05-01T09:13:00+00:00","jobs":2,"call":{"method":"manager.delete_job_by_id","params":{"id":"'"$run_id"'"}}},{"set_name":"x y","created_at":null,"jobs":1,"call":{"method":"manager.delete_job_by_id","params":{"id":"x y"}}},{"set_name":"z","call":{"method":"other.method","params":{"a":"it'"'"'s"}}}]}}'
answer manager.delete_job "$ambiguous"
expect 9 runs delete iris
contains "avatarctl: manager.delete_job: Multiple runs found for display name 'iris'. Delete the desired run by id (ambiguous)" "$err"
contains "    avatarctl runs delete --id $run_id   # created 2026-05-01 09:13:00, 2 jobs" "$err"
contains "    avatarctl runs delete --id 'x y'   # 1 job" "$err"
contains "    avatarctl call other.method '{\"a\":\"it'\\''s\"}'" "$err"
contains '  manager.delete_job_by_id {"id": "a"}' "$err"
expect 9 runs delete iris --socket "$sock"
contains "    avatarctl --socket $sock runs delete --id $run_id" "$err"
answer manager.delete_job
requests

# On a terminal: tables, summaries, the stale note.
if command -v script >/dev/null 2>&1; then
        # human_rc ARGS...: avatarctl on a pseudo-terminal; output in $out, exit status in $rc.
        human_rc() {
                script -qec "$(printf '%q ' "$ctl" "$@")" /dev/null </dev/null >"$dir/pty" 2>&1
                rc=$?
                out=$(tr -d '\r' <"$dir/pty")
        }

        # pty_type PROMPT LINE [PROMPT LINE]... -- ARGS...: avatarctl on a pseudo-terminal,
        # typing each LINE once its PROMPT shows (avatarctl prompts only once echo is off).
        pty_type() {
                local -a pairs=()
                local pid i k

                while [ "$1" != "--" ]; do
                        pairs+=("$1")
                        shift
                done
                shift
                rm -f "$dir/fifo"
                mkfifo "$dir/fifo"
                script -qec "$(printf '%q ' "$ctl" "$@")" /dev/null <"$dir/fifo" >"$dir/pty" 2>&1 &
                pid=$!
                exec 9>"$dir/fifo"
                for ((i = 0; i < ${#pairs[@]}; i += 2)); do
                        for ((k = 0; k < 400; k++)); do
                                grep -qF -- "${pairs[i]}" "$dir/pty" && break
                                sleep 0.05
                        done
                        printf '%s\n' "${pairs[i + 1]}" >&9
                done
                exec 9>&-
                wait "$pid"
                rc=$?
                out=$(tr -d '\r' <"$dir/pty")
        }

        human_rc health && same 0 "$rc" "health exit status"
        same "Message: ok" "$out" "health on a terminal"
        answer manager.get_health '"result":{"status":"ok","db":{"latency_ms":3},"stale":true,"age_s":42.4}'
        human_rc health
        contains "Status: ok" "$out"
        contains "  Latency ms: 3" "$out"
        contains "(stale, 42 s old)" "$out"
        lacks "Age s" "$out"
        answer manager.get_health

        human_rc compat
        contains "Status:                    compatible" "$out"
        contains "Latest compatible client:  -" "$out"
        contains "Checked:                   2m 6s ago" "$out"

        human_rc jobs
        contains "NAME            KIND             STATUS    PROGRESS  CREATED              DISPLAY NAME" "$out"
        contains "job-report-3    report           error            -  2026-05-01 10:00:00  -" "$out"
        contains "job-privacy-2   privacy_metrics  pending        40%  2026-05-01 09:13:00  iris" "$out"
        contains "job-standard-1  standard         finished      100%  2026-05-01 09:12:03  iris" "$out"
        lacks "stale" "$out"
        human_rc jobs --last 2
        contains "job-report-3   report           error           -  2026-05-01 10:00:00  -" "$out"
        lacks "job-standard-1" "$out"
        answer manager.get_last_jobs '"result":{"jobs":{},"stale":true,"age_s":7}'
        human_rc jobs --last 5
        same "No jobs.
(stale, 7 s old)" "$out" "an empty stale job list"
        answer manager.get_last_jobs
        human_rc job job-standard-1
        contains "Name:          job-standard-1" "$out"
        contains "Run id:        $run_id" "$out"
        contains "Progress:      100%" "$out"
        contains "Created:       2026-05-01 09:12:03" "$out"
        contains "Exception:     -" "$out"
        human_rc results --last 2
        contains "JOB             KIND      STATUS    RESULTS (KIND FILES)" "$out"
        contains "job-standard-1  standard  finished  shuffled 1, unshuffled 1, figures 3" "$out"
        contains "job-report-3    report    error     not available: Results file for job job-report-3 not found (not_found)" "$out"
        human_rc runs find iris
        contains "RUN ID                                NEWEST JOB           JOBS  STATUSES" "$out"
        contains "$run_id  2026-05-01 09:13:00     2  1 finished, 1 pending" "$out"
        answer manager.find_ids_by_name '"result":{"runs":[],"stale":false,"age_s":0}'
        human_rc runs find nobody && same "No runs named 'nobody'." "$out" "runs find without runs"
        answer manager.find_ids_by_name
        human_rc apikey list
        contains "ID                                    NAME  CREATED              EXPIRES              REVOKED              LAST USED" "$out"
        contains "$key_id  ci    2026-01-01 00:00:00  2027-01-01 00:00:00  -                    2026-05-01 08:00:00" "$out"
        human_rc apikey create --name ci --days 365
        contains "Created API key 'ci' (id 22222222-aaaa-4bbb-8ccc-000000000003), valid until 2027-05-01 09:00:00." "$out"
        contains "    avk_fake_PLAINTEXT_0123456789" "$out"
        contains "Save it now: it is shown only this once" "$out"
        human_rc apikey create --name ci --days 365 --store
        contains "The daemon switched to it" "$out"
        lacks "PLAINTEXT" "$out"
        human_rc apikey revoke "$key_id" && same "Revoked API key $key_id." "$out" "apikey revoke on a terminal"
        human_rc password forgot a@b.c && contains "password reset email to a@b.c." "$out"
        contains "run: avatarctl password reset a@b.c --token TOKEN" "$out"
        human_rc runs delete iris && same "Deleted 2 jobs, failed 0." "$out" "runs delete on a terminal"
        human_rc jobs delete a fail-b c
        same 1 "$rc" "jobs delete with a failed job: exit status"
        same "Deleted 2 jobs, failed 1.
Failed:
  fail-b" "$out" "jobs delete with a failed job"
        answer manager.delete_jobs "\"result\":$batch_error"
        human_rc jobs delete n1 n2 n3 n4 n5 n6
        same 7 "$rc" "jobs delete with a failed batch: exit status"
        contains "Deleted 0 jobs, failed 6." "$out"
        contains "Bad request (upstream_http_error, HTTP 422): 6 jobs: n1, n2, n3, n4, n5 and 1 more" "$out"
        answer manager.delete_jobs '"result":{"deleted_jobs":[],"failed_jobs":[],"errors":[],"batches":0}'
        human_rc jobs delete a && same "No jobs to delete." "$out" "an empty deletion"
        answer manager.delete_jobs
        requests

        # Passwords typed on the terminal are not echoed, and never printed.
        pty_type "Password: " "pty-s3cret" -- login alice
        same 0 "$rc" "login on a terminal: exit status"
        contains "Logged in as alice" "$out"
        contains "avatarctl: warning: Username/password" "$out"
        lacks "pty-s3cret" "$out"
        sent manager.authenticate '{"username":"alice","password":"pty-s3cret"}'
        pty_type "New password: " "pty-n3w" "Repeat the new password: " "pty-n3w" -- password reset a@b.c --token "$run_id"
        same 0 "$rc" "password reset on a terminal: exit status"
        contains "The password of a@b.c was reset." "$out"
        lacks "pty-n3w" "$out"
        sent manager.reset_password "{\"email\":\"a@b.c\",\"new_password\":\"pty-n3w\",\"new_password_repeated\":\"pty-n3w\",\"token\":\"$run_id\"}"
        pty_type "New password: " "pty-one" "Repeat the new password: " "pty-two" -- password reset a@b.c --token "$run_id"
        same 2 "$rc" "password reset with two different passwords: exit status"
        lacks "pty-one" "$out"
        nothing_sent "password reset with two different passwords"
fi

echo "RESULT: avatarctl passed=$passes failed=$failures"
[ "$failures" -eq 0 ]
