#!/bin/bash
# SPDX-License-Identifier: MIT
# avatarctl's argument handling, output and exit codes against fake-avatard.
# Usage: test-avatarctl.sh AVATARCTL FAKE-AVATARD
set -u

# shellcheck source=../lib/wait.sh
. "$(dirname "$0")/../lib/wait.sh"

# Absolute paths: some tests run in other directories.
ctl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
fake=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
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

# fake_listening: the fake's socket is there, or the fake is gone and it never will be.
fake_listening() {
        [ -S "$sock" ] && return 0
        kill -0 "$fake_pid" 2>/dev/null || return "$WAIT_NEVER"
        return 1
}

"$fake" "$sock" &
fake_pid=$!
wait_until 20 fake_listening
[ -S "$sock" ] || { echo "fake-avatard did not start"; echo "RESULT: avatarctl passed=0 failed=1"; exit 1; }

export AVATARD_SOCKET=$sock
# Times print in local time: make it the same everywhere.
export TZ=UTC
# No colour, and tables as wide as they need, but where a test asks for them.
export NO_COLOR=1
unset COLUMNS

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

# Output when piped: for people, as on a terminal; JSON (compact) with --format json or --json.
expect 0 status && contains "Version:  0.1.0 (protocol 1)" "$out"
lacks '"protocol_version"' "$out"
expect 0 status --format json && contains '"protocol_version":1' "$out"
expect 0 status --json && contains '"pid":4242' "$out"
same 1 "$(wc -l <<<"$out")" "JSON on a pipe: one line"
expect 0 --format yaml status && contains "protocol_version: 1" "$out"
contains "  max_frame_bytes: 1048576" "$out"
contains "    GET /health:" "$out"
contains '      "200": 3' "$out"
expect 0 --format ids status && same 4242 "$out" "--format ids status: the pid"
expect 2 --format xml status && contains "--format: expected table, json, yaml or ids, got 'xml'" "$err"
expect 0 methods && contains "daemon.status          Daemon status and counters" "$out"
expect 0 --json methods && contains '{"name":"daemon.status","summary":"Daemon status and counters"}' "$out"
expect 0 -q methods && same "daemon.status
manager.get_last_jobs
rpc.discover
runner.add_table" "$out" "-q methods: the names"
expect 0 methods manager.get_last_jobs --json && contains '"name":"count"' "$out"
expect 6 methods no.such.method && contains "no method named 'no.such.method'" "$err"
expect 0 call echo '{"a":"b/c"}' && same '{"a":"b/c"}' "$out" "call echo output"
printf '[1,2]' >"$dir/params"
"$ctl" call echo - <"$dir/params" >"$dir/out"
same 0 $? "params from stdin: exit status"
same '[1,2]' "$(cat "$dir/out")" "params from stdin: output"

# status: short by default, everything with --verbose.
expect 0 status
same "Version:  0.1.0 (protocol 1)
Daemon:   pid 4242, up 1h 2m 3s
Upstream: http://127.0.0.1:1/api: compatible, breaker closed
API key:  api-key, from api_key_file /etc/avatard/api-key
Calls:    7 served, 1 failed; 1 connection open
Runners:  2 held

More: avatarctl status --verbose" "$out" "status: one screen"
expect 0 status --verbose
contains "Uptime:      1h 2m 3s" "$out"
contains "daemon.status  5" "$out"
contains "Errors:
  not_found  1" "$out"
contains "Max frame bytes: 1048576" "$out"
contains "  Api url:       http://127.0.0.1:1/api" "$out"
# keys that are not names stay as they are: no "Get /health", no "0:" made into a label
contains "GET /health:" "$out"
contains "200: 3" "$out"
contains "Per uid:
    0: 1" "$out"
expect 0 status -v && contains "Max frame bytes" "$out"

# Human output, on a pseudo-terminal when script(1) is there to make one.
if command -v script >/dev/null 2>&1; then
        human() { script -qec "$(printf '%q ' "$ctl" "$@")" /dev/null </dev/null | tr -d '\r'; }
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
        out=$(human --json status)
        contains '"protocol_version": 1,' "$out"
fi

# Global options after the command, --socket over $AVATARD_SOCKET.
AVATARD_SOCKET=$dir/nope.sock expect 0 status --socket "$sock"
expect 3 --socket "$dir/nope.sock" status && contains "cannot connect to $dir/nope.sock" "$err"

# Error classes and exit codes.
for pair in -32602:2 -32601:2 -32600:2 -32603:1 -32000:7 -32001:7 -32002:7 -32003:7 \
            -32004:5 -32005:6 -32006:9 -32007:7 -32008:10 -32009:9 -32010:9 -32011:4 \
            -32012:7 -32013:8 -32014:7 -32015:1 -32016:10 -32017:7 -32018:10 -32019:8; do
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
contains "runs delete NAME | --id RUN [--yes]" "$out"
contains "jobs delete NAME...|-" "$out"
expect 0 help jobs && contains "--include-deleted    deleted jobs too" "$out"
contains "manager.get_last_jobs" "$out"
expect 0 help login && contains "never from the command line" "$out"
expect 0 jobs delete --help && contains "Usage: avatarctl jobs delete NAME...|-" "$out"
expect 0 jobs --help && contains "The other jobs commands:
  jobs delete NAME...|- [--yes]" "$out"
expect 0 runner --help && contains "  rm RUNNER... [--yes]" "$out"
expect 0 help runner && contains "See 'avatarctl help runner COMMAND'" "$out"
expect 0 help runs delete && contains "--id RUN" "$out"
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
expect 2 runs delete && contains "either a run's display name or --id RUN" "$err"
expect 2 runs delete iris --id "$run_id"
expect 2 runs delete --id '' && contains "--id: the run id is empty" "$err"
expect 2 runs delete a b
expect 2 jobs delete
expect 2 jobs delete '' && contains "expected job names of 1 to 256 characters" "$err"
expect 2 jobs delete "$(printf 'j%.0s' $(seq 257))"
expect 2 jobs delete - && contains "no job names given" "$err"
expect_stdin "$dir/pw1" 2 jobs delete - - && contains "- may be given only once" "$err"
nothing_sent "commands with bad arguments"

# What each command sends, and its output with --json: the daemon's result, unchanged.
expect 0 --json health && same '{"message":"ok","stale":false,"age_s":0.5}' "$out" "health output"
methods_sent() {
        requests
        same "$1" "$(grep -o '"method":"[^"]*"' <<<"$req" | sed 's/"method":"//; s/"$//' | tr '\n' ' ')" "$2"
}
methods_sent "manager.get_health manager.verify_compatibility " "health: the health, then the compatibility (cached)"
expect 0 --json compat && contains '"status":"compatible"' "$out"
sent manager.verify_compatibility null
expect 0 --json compat --refresh
sent manager.verify_compatibility '{"refresh":true}'

printf 's3cret pass\n' >"$dir/pw"
expect_stdin "$dir/pw" 0 --json login alice
sent manager.authenticate '{"username":"alice","password":"s3cret pass"}'
contains '"authenticated":true' "$out"
contains "avatarctl: warning: Username/password authentication is deprecated" "$err"
lacks s3cret "$out$err"
printf 'pass\r\nsecond line\n' >"$dir/pw-crlf"
expect_stdin "$dir/pw-crlf" 0 --json login alice --password-stdin --json
sent manager.authenticate '{"username":"alice","password":"pass"}'
answer manager.authenticate '"error":{"code":-32009,"message":"The daemon uses an API key; login is refused","data":{"name":"conflict","retryable":false}}'
expect_stdin "$dir/pw" 9 --json login alice
contains "avatarctl: login: The daemon uses an API key; login is refused (conflict)" "$err"
lacks s3cret "$out$err"
answer manager.authenticate
requests

expect 0 --json password forgot a@b.c && same '{"sent":true}' "$out" "password forgot output"
sent manager.forgotten_password '{"email":"a@b.c"}'
printf 'n3w-pass\nn3w-pass\n' >"$dir/pw-twice"
expect_stdin "$dir/pw-twice" 0 --json password reset a@b.c --token "$run_id"
same '{"reset":true}' "$out" "password reset output"
sent manager.reset_password "{\"email\":\"a@b.c\",\"new_password\":\"n3w-pass\",\"new_password_repeated\":\"n3w-pass\",\"token\":\"$run_id\"}"
lacks n3w-pass "$out$err"

expect 0 --json apikey create --name ci --days 365
contains '"plaintext":"avk_fake_PLAINTEXT_0123456789"' "$out"
sent manager.create_api_key '{"name":"ci","expiration_days":365}'
expect 0 --json apikey create --days 3650 --store --name "ci key"
lacks PLAINTEXT "$out" && contains '"stored":true' "$out"
sent manager.create_api_key '{"name":"ci key","expiration_days":3650,"store":true}'
expect 0 --json apikey list && contains '"api_keys":[{"id":"'"$key_id"'"' "$out"
sent manager.list_api_keys null
expect 0 --json apikey revoke "$key_id"
same "{\"revoked\":true,\"api_key_id\":\"$key_id\",\"response\":null}" "$out" "apikey revoke output"
sent manager.revoke_api_key "{\"api_key_id\":\"$key_id\"}"

expect 0 --json jobs
jobs_json=$out
sent manager.get_jobs null
expect 0 --json call manager.get_jobs && same "$out" "$jobs_json" "jobs prints what manager.get_jobs returns"
requests
expect 0 --json jobs --kind standard --kind report --kind standard --name iris --limit 5 --include-deleted
sent manager.get_jobs '{"kind":["standard","report"],"display_name":"iris","limit":5,"include_deleted":true}'
expect 0 --json jobs --set "$run_id" --kind advice
sent manager.get_jobs "{\"kind\":[\"advice\"],\"set_name\":\"$run_id\"}"
# a run by its display name, or by a unique prefix of its id
expect 0 --json jobs --set iris
requests
contains '{"method":"manager.find_ids_by_name","params":{"set_name":"iris"}}' "$req"
contains "{\"method\":\"manager.get_jobs\",\"params\":{\"set_name\":\"$run_id\"}}" "$req"
answer manager.find_ids_by_name '"result":{"runs":[],"stale":false,"age_s":0}'
expect 0 --json jobs --set 9b1d
requests
contains "{\"method\":\"manager.get_jobs\",\"params\":{\"set_name\":\"$run_id\"}}" "$req"
expect 6 jobs --set ffff && contains "no run 'ffff': not a run id, a prefix of one or a display name" "$err"
contains "hint: look for it with 'avatarctl runs find NAME'" "$err"
answer manager.find_ids_by_name '"result":{"runs":[{"set_name":"'"$run_id"'","created_at":"2026-05-01T09:13:00+00:00","jobs":[{},{}]},{"set_name":"0c2e0000-2222-4b4b-9c9c-000000000002","created_at":null,"jobs":[{}]}],"stale":false,"age_s":0}'
expect 9 jobs --set iris && contains "avatarctl: jobs: 'iris' names 2 runs; give the id of one (ambiguous):
  $run_id  newest job 2026-05-01T09:13:00Z, 2 jobs
  0c2e0000-2222-4b4b-9c9c-000000000002  newest job -, 1 job" "$err"
answer manager.find_ids_by_name
requests
expect 0 --json jobs --last 2 && contains '"jobs":{"job-report-3":{' "$out"
sent manager.get_last_jobs '{"count":2}'
expect 0 --json job job-standard-1 && contains '"progress":1.0' "$out"
sent manager.get_job '{"name":"job-standard-1"}'
expect 0 --json results && contains '"results":[{"job":"job-standard-1"' "$out"
sent manager.get_last_results null
expect 0 --json results --last 2
sent manager.get_last_results '{"count":2}'
expect 0 --json runs find iris && contains "\"runs\":[{\"set_name\":\"$run_id\"" "$out"
sent manager.find_ids_by_name '{"set_name":"iris"}'
expect 0 --json runs delete iris --yes && contains '"batches":1' "$out"
sent manager.delete_job '{"name":"iris"}'
expect 0 --json runs delete --id "$run_id" --yes
sent manager.delete_job_by_id "{\"id\":\"$run_id\"}"
# without --yes and no terminal to ask on: refused, nothing deleted
expect 2 runs delete iris && contains "runs delete: Delete every job of the run named 'iris': not without a confirmation, and stdin is not a terminal to ask on: add --yes to go on" "$err"
nothing_sent "runs delete without --yes"
expect 2 jobs delete a b && contains "Delete 2 jobs (a, b): not without a confirmation" "$err"
nothing_sent "jobs delete without --yes"
expect 0 jobs delete a && contains "Deleted 1 job, failed 0." "$out"
sent manager.delete_jobs '{"job_names":["a"]}'
answer manager.find_ids_by_name '"result":{"runs":[],"stale":false,"age_s":0}'
expect 0 --json runs delete --id 9b1d5c7e --yes
requests
contains "{\"method\":\"manager.delete_job_by_id\",\"params\":{\"id\":\"$run_id\"}}" "$req"
answer manager.find_ids_by_name
requests
expect 0 --json jobs delete a b --yes && contains '"deleted_jobs":[{"name":"a"' "$out"
sent manager.delete_jobs '{"job_names":["a","b"]}'
printf '  x1 \n\n\tx2\r\n' >"$dir/names"
expect_stdin "$dir/names" 0 --json jobs delete first - last --yes
sent manager.delete_jobs '{"job_names":["first","x1","x2","last"]}'

# Deletions that leave jobs behind exit with the class of the first failure (6: a name the
# server did not know), with the result still printed.
expect 6 --json jobs delete a fail-b c --yes && contains '"failed_jobs":["fail-b"]' "$out"
requests
batch_error='{"deleted_jobs":[],"failed_jobs":["n1","n2","n3","n4","n5","n6"],"errors":[{"job_names":["n1","n2","n3","n4","n5","n6"],"code":-32001,"name":"upstream_http_error","message":"Bad request","status":422}],"batches":1}'
answer manager.delete_jobs "\"result\":$batch_error"
expect 7 --json jobs delete n1 n2 n3 n4 n5 n6 --yes && same "$batch_error" "$out" "jobs delete output with a failed batch"
answer manager.delete_jobs
requests

# A list too long for one line goes in several calls of whole 100-name batches, merged.
pad=$(printf 'x%.0s' $(seq 141))
for i in $(seq 2500); do printf 'job-%04d-%s\n' "$i" "$pad"; done >"$dir/many"
expect_stdin "$dir/many" 0 --json jobs delete - --yes
contains '"batches":25' "$out"
same 2500 "$(grep -o '"status":"finished"' <<<"$out" | wc -l)" "jobs deleted over several calls"
requests
same 2 "$(grep -o '"method":"manager.delete_jobs"' <<<"$req" | wc -l)" "calls for 2500 long names"
contains "\"params\":{\"job_names\":[\"job-1701-$pad\"" "$req"
answer manager.delete_jobs '"skip":1,"error":{"code":-32000,"message":"upstream down","data":{"name":"upstream_unreachable","retryable":true}}'
expect_stdin "$dir/many" 7 --json jobs delete - --yes
contains "avatarctl: jobs delete: upstream down (upstream_unreachable)" "$err"
contains '"batches":17' "$out"
contains "\"failed_jobs\":[\"job-1701-$pad\"" "$out"
contains '"code":-32000,"name":"upstream_unreachable","message":"upstream down"' "$out"
answer manager.delete_jobs '"error":{"code":-32004,"message":"Permission denied: the method needs the operate role","data":{"name":"permission_denied","retryable":false,"required_role":"operate"}}'
expect 5 --json jobs delete a --yes && same "" "$out" "output of a deletion refused as a whole"
contains "required_role: operate" "$err"
answer manager.delete_jobs
requests

# Errors: the command that failed, the useful data, what to do next, the exit code of the
# class.
answer manager.get_job '"error":{"code":-32005,"message":"No job named x","data":{"name":"not_found","retryable":false}}'
expect 6 job x && same "avatarctl: job: No job named x (not_found)
hint: see the jobs with 'avatarctl jobs'" "$err" "not found error line"
# a unique prefix of a job's name is the job; an ambiguous one lists the candidates once
answer manager.get_job '"times":1,"error":{"code":-32005,"message":"No job named job-stan","data":{"name":"not_found","retryable":false}}'
expect 0 --json job job-stan
requests
contains '{"method":"manager.get_jobs","params":null},{"method":"manager.get_job","params":{"name":"job-standard-1"}}' "$req"
answer manager.get_job '"error":{"code":-32005,"message":"No job named job-","data":{"name":"not_found","retryable":false}}'
expect 9 job job- && contains "avatarctl: job: 'job-' names 3 jobs; give the id of one (ambiguous):" "$err"
same 1 "$(grep -c 'job-standard-1' <<<"$err")" "an ambiguous prefix lists each candidate once"
answer manager.get_job '"error":{"code":-32005,"message":"First line:\n  second line\n  third line","data":{"name":"not_found","retryable":false}}'
expect 6 job x && contains "job: First line (not_found)" "$err"
contains "  second line" "$err"
answer manager.get_job
requests
# methods named in a message are the commands that call them
answer manager.get_health '"error":{"code":-32602,"message":"Invalid params: no table iris (add it with runner.add_table first)","data":{"name":"invalid_params","retryable":false}}'
expect 2 health && contains "avatarctl: health: Invalid params: no table iris (add it with 'avatarctl runner add-table' first) (invalid_params)" "$err"
contains "hint: see 'avatarctl help health'" "$err"
lacks "runner.add_table" "$err"
# the role a call needs: the group to join, and how
answer manager.get_health '"error":{"code":-32004,"message":"Permission denied: the method needs the read role","data":{"name":"permission_denied","retryable":false,"required_role":"read"}}'
expect 5 health && contains "hint: this needs the read role; members of the 'avatar' group may read and operate: join it with 'sudo usermod -aG avatar \$USER' and log in again" "$err"
answer manager.get_health
# health: the server unreachable (the daemon's stale answer) or incompatible is a failure
answer manager.get_health '"result":{"message":"ok","stale":true,"age_s":78.2}'
expect 7 health && contains "Message: ok" "$out"
contains "avatarctl: health: the Avatar server is unreachable: this is the daemon's last answer, 78 s old (upstream_unreachable)" "$err"
contains "hint: 'avatarctl health --stale-ok' accepts it" "$err"
expect 0 health --stale-ok && contains "(stale, 78 s old)" "$out"
answer manager.get_health
answer manager.verify_compatibility '"error":{"code":-32003,"message":"The Avatar server says this client is incompatible.","data":{"name":"incompatible","retryable":false,"status":"incompatible"}}'
expect 7 health && contains "avatarctl: health: compat: The Avatar server says this client is incompatible. (incompatible)" "$err"
answer manager.verify_compatibility
requests
answer manager.verify_compatibility '"error":{"code":-32003,"message":"The Avatar server says this client is incompatible.","data":{"name":"incompatible","retryable":false,"status":"incompatible","most_recent_compatible_client":"1.4.0"}}'
expect 7 compat && contains "most_recent_compatible_client: 1.4.0" "$err"
answer manager.verify_compatibility
answer manager.get_health '"error":{"code":-32012,"message":"The daemon holds no credential","data":{"name":"not_authenticated","retryable":false}}'
expect 7 health && contains "(not_authenticated)" "$err"
answer manager.get_health
ambiguous='"error":{"code":-32006,"message":"Multiple runs found for display name '"'"'iris'"'"'. Delete the desired run by id:\n  manager.delete_job_by_id {\"id\": \"a\"}","data":{"name":"ambiguous","retryable":false,"candidates":[{"set_name":"'"$run_id"'","created_at":"2026-05-01T09:13:00+00:00","jobs":2,"call":{"method":"manager.delete_job_by_id","params":{"id":"'"$run_id"'"}}},{"set_name":"x y","created_at":null,"jobs":1,"call":{"method":"manager.delete_job_by_id","params":{"id":"x y"}}},{"set_name":"z","call":{"method":"other.method","params":{"a":"it'"'"'s"}}}]}}'
answer manager.delete_job "$ambiguous"
expect 9 runs delete iris --yes
contains "avatarctl: runs delete: Multiple runs found for display name 'iris'. Delete the desired run by id (ambiguous)" "$err"
contains "    avatarctl runs delete --id $run_id   # created 2026-05-01T09:13:00Z, 2 jobs" "$err"
contains "    avatarctl runs delete --id 'x y'   # 1 job" "$err"
contains "    avatarctl call other.method '{\"a\":\"it'\\''s\"}'" "$err"
# the candidates once: as the commands to run, not again as the daemon's lines
lacks 'manager.delete_job_by_id {"id": "a"}' "$err"
expect 9 runs delete iris --socket "$sock" --yes
contains "    avatarctl --socket $sock runs delete --id $run_id" "$err"
answer manager.delete_job
requests

# On a terminal: tables, summaries, the stale note.
if command -v script >/dev/null 2>&1; then
        export COLUMNS=200
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
                local pid i

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
                        wait_until 20 grep -qF -- "${pairs[i]}" "$dir/pty" ||
                                echo "# the prompt '${pairs[i]}' did not show; typing anyway"
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
        contains "NAME            KIND             STATUS    PROGRESS  CREATED               DISPLAY NAME" "$out"
        contains "job-report-3    report           error            -  2026-05-01T10:00:00Z  -" "$out"
        contains "job-privacy-2   privacy_metrics  pending        40%  2026-05-01T09:13:00Z  iris" "$out"
        contains "job-standard-1  standard         finished      100%  2026-05-01T09:12:03Z  iris" "$out"
        lacks "stale" "$out"
        human_rc jobs --last 2
        contains "job-report-3   report           error           -  2026-05-01T10:00:00Z  -" "$out"
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
        contains "Created:       2026-05-01T09:12:03Z" "$out"
        contains "Exception:     -" "$out"
        human_rc results --last 2
        contains "JOB             KIND      STATUS    RESULTS (KIND FILES)" "$out"
        contains "job-standard-1  standard  finished  shuffled 1, unshuffled 1, figures 3" "$out"
        contains "job-report-3    report    error     not available: Results file for job job-report-3 not found (not_found)" "$out"
        human_rc runs find iris
        contains "RUN ID                                NEWEST JOB            JOBS  STATUSES" "$out"
        contains "$run_id  2026-05-01T09:13:00Z     2  1 finished, 1 pending" "$out"
        answer manager.find_ids_by_name '"result":{"runs":[],"stale":false,"age_s":0}'
        human_rc runs find nobody && same "No runs named 'nobody'." "$out" "runs find without runs"
        answer manager.find_ids_by_name
        human_rc apikey list
        contains "ID                                    NAME  CREATED               EXPIRES               REVOKED               LAST USED" "$out"
        contains "$key_id  ci    2026-01-01T00:00:00Z  2027-01-01T00:00:00Z  -                     2026-05-01T08:00:00Z" "$out"
        human_rc apikey create --name ci --days 365
        contains "Created API key 'ci' (id 22222222-aaaa-4bbb-8ccc-000000000003), valid until 2027-05-01T09:00:00Z." "$out"
        contains "    avk_fake_PLAINTEXT_0123456789" "$out"
        contains "Save it now: it is shown only this once" "$out"
        human_rc apikey create --name ci --days 365 --store
        contains "The daemon switched to it" "$out"
        lacks "PLAINTEXT" "$out"
        human_rc apikey revoke "$key_id" && same "Revoked API key $key_id." "$out" "apikey revoke on a terminal"
        human_rc password forgot a@b.c && contains "password reset email to a@b.c." "$out"
        contains "run: avatarctl password reset a@b.c --token TOKEN" "$out"
        human_rc runs delete iris --yes && same "Deleted 2 jobs, failed 0." "$out" "runs delete on a terminal"
        requests
        # on a terminal it asks; only y goes on
        pty_type "[y/N]" "n" -- runs delete iris
        same 1 "$rc" "runs delete answered no: exit status"
        contains "Delete every job of the run named 'iris'? [y/N]" "$out"
        contains "avatarctl: runs delete: nothing was deleted" "$out"
        nothing_sent "runs delete answered no"
        pty_type "[y/N]" "y" -- runs delete iris
        same 0 "$rc" "runs delete answered yes: exit status"
        contains "Deleted 2 jobs, failed 0." "$out"
        sent manager.delete_job '{"name":"iris"}'
        human_rc jobs delete a fail-b c --yes
        same 6 "$rc" "jobs delete with a failed job: exit status (not found)"
        same "Deleted 2 jobs, failed 1.
Failed:
  fail-b  the server did not delete it: no such job, or not yours (not_found)" "$out" "jobs delete with a failed job"
        answer manager.delete_jobs "\"result\":$batch_error"
        human_rc jobs delete n1 n2 n3 n4 n5 n6 --yes
        same 7 "$rc" "jobs delete with a failed batch: exit status"
        contains "Deleted 0 jobs, failed 6." "$out"
        contains "  n1  Bad request (upstream_http_error, HTTP 422)" "$out"
        contains "  n6  Bad request (upstream_http_error, HTTP 422)" "$out"
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

# ---- Runner commands, avatarize, runs load, watch ------------------------------------------
# fake-avatard holds one runner ($runner) whose run is $set; it reads the descriptors that
# come with runner.add_table and notes their size and first bytes in fake.requests, and writes
# known bytes (binary ones for the reports) into the descriptors of runner.download.

runner=7c0a5a2e-2222-4b4b-9c9c-000000000002
set=5e7d0c1a-3333-4c4c-8d8d-000000000003
work=$dir/work
mkdir -p "$work"
printf 'sepal_length,species\n5.1,setosa\n' >"$work/iris.csv"
printf 'a,b\n1,2\n3,4\n' >"$work/avatars.csv"
# The bytes fake-avatard writes for each result.
printf 'sepal_length,species\n5.1,setosa\n4.9,versicolor\n' >"$dir/want-shuffled"
printf '{"metadata":{"table_name":"iris"},"hidden_rate":0.91}\n' >"$dir/want-privacy"
printf '{"metadata":{"table_name":"iris"},"hellinger_mean":0.12}\n' >"$dir/want-signal"
printf '%%PDF-1.4\n\x00\x01\x02\xff\xfe\x80\r\n\x1a%%%%EOF\n' >"$dir/want-report"
printf 'PK\x03\x04\x14\x00\x06\x00\xff\xd8\n\x00word/document.xml\x00' >"$dir/want-pia"

# same_file WANT GOT WHAT: checks that two files hold the same bytes.
same_file() {
        if cmp -s "$1" "$2"; then
                passes=$((passes + 1))
        else
                echo "FAIL: $3: $2 differs from $1"
                failures=$((failures + 1))
        fi
}

# mode_of FILE: its permission bits in octal.
mode_of() {
        stat -c %a "$1"
}

# methods: the methods of the requests since the last look, in order, on one line in $calls
# (the requests themselves in $req).
methods() {
        requests
        calls=$(grep -o '"method":"[^"]*"' <<<"$req" | sed 's/"method":"//; s/"$//' | tr '\n' ' ')
}

# Usage and help.
expect 0 --help
contains "avatarize FILE [OPTIONS]" "$out"
contains "runner download RUNNER [RESULT] [--table T] [--index N] [-o FILE|-|DIR] [--force]" "$out"
contains "watch RUN | --runner RUNNER [--jobs NAMES] [--wait-timeout S]" "$out"
contains "runs load NAME|ID" "$out"
expect 0 help avatarize && contains "--no-wait" "$out"
contains "--wait-timeout S" "$out"
contains "--resume RUNNER" "$out"
expect 0 runner download --help && contains "-o, --output FILE|-|DIR" "$out"
expect 0 help runner set-parameters && contains "--params-json OBJECT" "$out"
for o in k ncp use-categorical-reduction column-weights exclude-variable-names exclude-replacement-strategy \
         exclude-variable-method imputation-method imputation-k imputation-training-fraction \
         imputation-return-data-imputed open-dp-epsilon fast-dp-epsilon time-series-nf \
         time-series-projection-type time-series-nb-points time-series-method known-variables target \
         quantile-threshold data-augmentation-strategy data-augmentation-target-column \
         data-augmentation-should-anonymize-original-table use-excluded-variables-in-metrics; do
        contains "--$o" "$out"
done
expect 0 help runner update-parameters && contains "--unset NAME" "$out"
expect 2 runner && contains "'runner' needs a subcommand: create create-from-yaml list add-table add-link" "$err"
expect 2 runs && contains "find delete load" "$err"

# Bad arguments: exit 2, nothing sent.
requests
expect 2 runner create
expect 2 runner create '' && contains "NAME: expected 1 to 255 characters" "$err"
expect 2 runner create x --language de && contains "--language: expected en or fr, got 'de'" "$err"
expect 2 runner create x --pia-data-type bogus
expect 2 runner create x --pia-sensitivity-level extreme
expect 2 runner create x --seed 1.5
expect 2 runner create x --max-distribution-plots -1
expect 2 runner create-from-yaml x "$work/missing.yaml" && contains "cannot open" "$err"
expect 6 runner add-table nope iris "$work/iris.csv" && contains "no runner 'nope': not the id, an id prefix or the display name of one of your runners" "$err"
contains "hint: see your runners with 'avatarctl runner list'" "$err"
requests
expect 2 runner add-table "$runner" iris "$work/missing.csv" && contains "cannot open $work/missing.csv" "$err"
expect 2 runner add-table "$runner" iris "$work"
expect 2 runner add-table "$runner" '' "$work/iris.csv"
expect 2 runner add-table "$runner" iris "$work/iris.csv" --type a
expect 2 runner add-table "$runner" iris "$work/iris.csv" --type a=str && contains "expected int, bool, category" "$err"
expect 2 runner add-table "$runner" iris "$work/iris.csv" --individual-level --no-individual-level
expect 2 runner add-table "$runner" iris - --avatar-data - && contains "not both" "$err"
expect 2 runner add-link "$runner" parent child.id && contains "expected TABLE.FIELD, got 'parent'" "$err"
expect 2 runner add-link "$runner" p.id c.
expect 2 runner add-link "$runner" p.id c.pid --method nearest
expect 2 runner set-parameters "$runner"
expect 2 runner set-parameters "$runner" iris --k 1 && contains "--k: expected an integer from 2 to 1000, got '1'" "$err"
expect 2 runner set-parameters "$runner" iris --ncp 0
expect 2 runner set-parameters "$runner" iris --imputation-training-fraction 0
expect 2 runner set-parameters "$runner" iris --imputation-training-fraction 1.5
expect 2 runner set-parameters "$runner" iris --open-dp-epsilon 0 && contains "expected a number above 0" "$err"
expect 2 runner set-parameters "$runner" iris --use-categorical-reduction=maybe
expect 2 runner set-parameters "$runner" iris --use-categorical-reduction maybe
expect 2 runner set-parameters "$runner" iris --column-weights a
expect 2 runner set-parameters "$runner" iris --column-weights a=heavy
expect 2 runner set-parameters "$runner" iris --exclude-variable-names a,,b
expect 2 runner set-parameters "$runner" iris --imputation-method magic
expect 2 runner set-parameters "$runner" iris --data-augmentation-strategy -2
expect 2 runner set-parameters "$runner" iris --target ''
expect 2 runner set-parameters "$runner" iris --params-json '[1]' && contains "--params-json: expected a JSON object" "$err"
expect 2 runner set-parameters "$runner" iris --params-json '{bad'
expect 2 runner set-parameters "$runner" iris --unset k && contains "--unset is for runner update-parameters" "$err"
expect 2 runner update-parameters "$runner" iris && contains "nothing to change" "$err"
expect 2 runner update-parameters "$runner" iris --unset bogus && contains "no parameter named 'bogus'" "$err"
expect 2 runner advise "$runner" --table ''
expect 2 runner run "$runner" --jobs report_pia && contains "--jobs: expected standard, signal_metrics, privacy_metrics or report" "$err"
expect 2 runner run "$runner" --jobs standard,,report
expect 2 runner wait "$runner" --wait-timeout 0
expect 2 runner wait "$runner" --wait-timeout 604801
expect 2 runner wait "$runner" --jobs everything
expect 2 runner results
expect 2 runner download "$runner" && contains "give the RESULT to download, or -o DIR for every result" "$err"
expect 2 runner download "$runner" -o - && contains "give the RESULT to download, or -o DIR for every result" "$err"
expect 2 runner download "$runner" pictures && contains "RESULT: expected shuffled, unshuffled" "$err"
expect 2 runner download "$runner" figures --index -1
expect 2 runner download "$runner" shuffled -o ''
expect 2 runner export-yaml "$runner" -o ''
expect 2 runner delete "$runner" --jobs all
expect 2 runner close "$runner" extra
expect 2 runs load ''
expect 2 watch && contains "give either a run (RUN) or --runner RUNNER" "$err"
expect 2 watch "$set" --runner "$runner"
expect 2 watch --runner "$runner" --wait-timeout 0.01
expect 2 watch --runner "$runner" --timeout 0.01 && contains "--wait-timeout: at least 0.1 s" "$err"
expect 2 avatarize && contains "give the FILE to avatarize (or --resume RUNNER)" "$err"
expect 2 avatarize "$work/missing.csv"
expect 2 avatarize - && contains "give its name with --name" "$err"
expect 2 avatarize "$work/iris.csv" --k 1
expect 2 avatarize "$work/iris.csv" --jobs report_pia
expect 2 avatarize "$work/iris.csv" --timeout-wait 0
expect 2 avatarize "$work/iris.csv" --wait-timeout 0
expect 2 avatarize "$work/iris.csv" -o - && contains "avatarize writes several files: give a directory" "$err"
expect 2 avatarize "$work/iris.csv" --name ''
expect 2 avatarize "$work/iris.csv" --output "$work/iris.csv" && contains "exists and is not a directory" "$err"
expect 2 avatarize "$work/.csv" && contains "cannot open" "$err"
nothing_sent "runner commands with bad arguments"

# What the commands send, and what they print with --json: the daemon's result.
expect 0 --json runner create iris --seed 42 --max-distribution-plots 3 --pia-data-recipient internal \
        --pia-data-type health --pia-data-subject patients --pia-sensitivity-level very-high --language fr
sent manager.create_runner '{"set_name":"iris","seed":42,"max_distribution_plots":3,"pia_data_recipient":"internal","pia_data_type":"health","pia_data_subject":"patients","report_language":"fr","pia_sensitivity_level":"Very High"}'
contains "\"runner_id\":\"$runner\"" "$out"
expect 0 --json runner list --all && contains '"runners":[{' "$out"
sent runner.list '{"all":true}'
expect 0 --json runner list
sent runner.list null

expect 0 --json runner add-table "$runner" iris "$work/iris.csv" --primary-key id --foreign-key a,b --foreign-key c \
        --time t --type a=int --type b=category --no-individual-level --avatar-data "$work/avatars.csv"
requests
contains "\"params\":{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"primary_key\":\"id\",\"foreign_keys\":[\"a\",\"b\",\"c\"],\"time_series_time\":\"t\",\"types\":{\"a\":\"int\",\"b\":\"category\"},\"individual_level\":false,\"data\":{\"fd\":0},\"file_name\":\"iris.csv\",\"avatar_data\":{\"fd\":1},\"avatar_file_name\":\"avatars.csv\"}" "$req"
contains '"fds":[{"type":"regular","access":"r"},{"type":"regular","access":"r"}]' "$req"
contains '"read":[{"param":"data","bytes":32,"head":"sepal_length,species.5.1,setosa."},{"param":"avatar_data","bytes":12,"head":"a,b.1,2.3,4."}]' "$req"
contains '"upload":{"file":"iris.csv","bytes":32,"avatar_bytes":12}' "$out"
# "-" passes stdin as it is: here a pipe, read to its end by the daemon.
printf 'x,y\n1,2\n' | "$ctl" runner add-table "$runner" iris - --file-name data.csv --individual-level >"$dir/out" 2>"$dir/err"
same 0 $? "add-table from a pipe: exit status"
requests
contains '"individual_level":true,"data":{"fd":0},"file_name":"data.csv"}' "$req"
contains '"fds":[{"type":"fifo","access":"r"}],"read":[{"param":"data","bytes":8,"head":"x,y.1,2."}]' "$req"
expect_stdin "$work/iris.csv" 0 --json runner add-table "$runner" iris -
requests
contains '"data":{"fd":0}},"fds":[{"type":"regular","access":"r"}],"read":[{"param":"data","bytes":32' "$req"

expect 0 --json runner add-link "$runner" patients.id visits.patient.id --method time_series
sent runner.add_link "{\"runner_id\":\"$runner\",\"parent_table_name\":\"patients\",\"parent_field\":\"id\",\"child_table_name\":\"visits\",\"child_field\":\"patient.id\",\"method\":\"time_series\"}"

expect 0 runner delete-table "$runner" visits
sent runner.delete_table "{\"runner_id\":\"$runner\",\"table_name\":\"visits\"}"
same "Deleted table visits with its links and parameters." "$out" "delete-table says what went"
expect 0 runner delete-link "$runner" patients visits
sent runner.delete_link "{\"runner_id\":\"$runner\",\"parent_table_name\":\"patients\",\"child_table_name\":\"visits\"}"
same "Deleted the link from table patients to table visits." "$out" "delete-link says what went"
expect 2 runner delete-link "$runner" patients
nothing_sent "delete-link without CHILD"
expect 0 --json runner delete-parameters "$runner" iris ncp column-weights k ncp
sent runner.delete_parameters "{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"parameters_names\":[\"ncp\",\"column_weights\",\"k\"]}"
expect 0 --json runner delete-parameters "$runner" iris
sent runner.delete_parameters "{\"runner_id\":\"$runner\",\"table_name\":\"iris\"}"
expect 2 runner delete-parameters "$runner" iris kk
nothing_sent "delete-parameters of an unknown name"
contains "no parameter named 'kk'" "$err"

expect 0 --json runner set-parameters "$runner" iris --k 10 --ncp 5 --use-categorical-reduction \
        --column-weights a=2,b=0.5 --column-weights c=1 --exclude-variable-names x,y --exclude-replacement-strategy row_order \
        --exclude-variable-method coordinate_similarity --imputation-method knn --imputation-k 3 \
        --imputation-training-fraction 0.5 --imputation-return-data-imputed=false --open-dp-epsilon 1.5 \
        --fast-dp-epsilon 2 --time-series-nf 4 --time-series-projection-type fpca --time-series-nb-points 7 \
        --time-series-method mean --known-variables u --known-variables v,w --target species --quantile-threshold 0 \
        --data-augmentation-strategy 0.25 --data-augmentation-target-column species \
        --data-augmentation-should-anonymize-original-table --use-excluded-variables-in-metrics=yes
sent runner.set_parameters "{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"k\":10,\"ncp\":5,\"use_categorical_reduction\":true,\"column_weights\":{\"a\":2.0,\"b\":0.5,\"c\":1.0},\"exclude_variable_names\":[\"x\",\"y\"],\"exclude_replacement_strategy\":\"row_order\",\"exclude_variable_method\":\"coordinate_similarity\",\"imputation_method\":\"knn\",\"imputation_k\":3,\"imputation_training_fraction\":0.5,\"imputation_return_data_imputed\":false,\"open_dp_epsilon\":1.5,\"fast_dp_epsilon\":2.0,\"time_series_nf\":4,\"time_series_projection_type\":\"fpca\",\"time_series_nb_points\":7,\"time_series_method\":\"mean\",\"known_variables\":[\"u\",\"v\",\"w\"],\"target\":\"species\",\"quantile_threshold\":0,\"data_augmentation_strategy\":0.25,\"data_augmentation_target_column\":\"species\",\"data_augmentation_should_anonymize_original_table\":true,\"use_excluded_variables_in_metrics\":true}"
contains '"parameters":{"k":10,' "$out"
expect 0 --json runner set-parameters "$runner" iris --params-json '{"k":3,"ncp":2,"runner_id":"ignored","column_weights":{"a,b":1}}' --k 4 \
        --data-augmentation-strategy minority=0.5,majority=1
sent runner.set_parameters "{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"k\":4,\"ncp\":2,\"column_weights\":{\"a,b\":1},\"data_augmentation_strategy\":{\"minority\":0.5,\"majority\":1.0}}"
same "" "$err" "--params-json: no note"
# the old spelling "--json OBJECT" still works, with a note; --json alone is the output format
expect 0 runner set-parameters "$runner" iris --json '{"k":3}' --json
sent runner.set_parameters "{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"k\":3}"
contains "avatarctl: warning: --json OBJECT is now --params-json OBJECT; --json alone asks for JSON output" "$err"
contains '"parameters":{"k":3}' "$out"
expect 0 runner set-parameters "$runner" iris --json='{"k":4}'
sent runner.set_parameters "{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"k\":4}"
contains "Parameters of table iris:" "$out"
expect 0 --json runner set-parameters "$runner" iris --k 2 --data-augmentation-strategy oversample
sent runner.set_parameters "{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"k\":2,\"data_augmentation_strategy\":\"oversample\"}"
contains "avatarctl: warning: You have set k = 2, the minimum." "$err"
expect 0 --json runner update-parameters "$runner" iris --unset k --unset use-excluded-variables-in-metrics --ncp 3
sent runner.update_parameters "{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"ncp\":3,\"k\":null,\"use_excluded_variables_in_metrics\":null}"
expect 0 --json runner advise "$runner" --table iris && contains '"parameters":{"iris":{"k":12,"ncp":4}}' "$out"
sent runner.advise_parameters "{\"runner_id\":\"$runner\",\"table_name\":\"iris\"}"
expect 0 --json runner run "$runner" --jobs standard,report --jobs standard --jobs signal_metrics,privacy_metrics --ignore-warnings
sent runner.run "{\"runner_id\":\"$runner\",\"jobs\":[\"standard\",\"report\",\"signal_metrics\",\"privacy_metrics\"],\"ignore_warnings\":true}"
contains "\"set_name\":\"$set\"" "$out"
expect 0 --json runner status "$runner" --refresh && contains '"state":"finished"' "$out"
sent runner.get_status "{\"runner_id\":\"$runner\",\"refresh\":true}"
expect 0 --json runner wait "$runner" --jobs standard,report_pia --timeout 90 && contains '"done":true' "$out"
sent runner.wait "{\"runner_id\":\"$runner\",\"jobs\":[\"standard\",\"report_pia\"],\"timeout_s\":90.0}"
# stderr not a terminal: a plain line per change, no carriage return, whatever the output
contains "job standard pending 0.4" "$err"
contains "job standard finished 1" "$err"
lacks "$(printf '\r')" "$err"
expect 0 --json runner wait "$runner" --wait-timeout 120 --timeout 600
sent runner.wait "{\"runner_id\":\"$runner\",\"timeout_s\":120.0}"
expect 0 -q runner wait "$runner" && same "" "$err" "runner wait -q: no progress"
answer runner.wait '"error":{"code":-32016,"message":"The daemon is stopping","data":{"name":"shutting_down","retryable":true,"runner_id":"'"$runner"'","reattach":"avatarctl runner wait '"$runner"'"}}'
expect 10 runner wait "$runner" && contains "hint: the jobs go on upstream: once the daemon is back, attach again with 'avatarctl runner wait $runner'" "$err"
answer runner.wait '"error":{"code":-32019,"message":"Jobs lost upstream: standard (j1)","data":{"name":"jobs_lost","retryable":false,"runner_id":"'"$runner"'","lost":[{"job":"standard","job_name":"j1"}]}}'
expect 8 runner wait "$runner" && contains "(jobs_lost)" "$err" && contains "'avatarctl runner run $runner' runs them again" "$err"
answer runner.wait
# polls without news: said at 3, again once the count doubled (6), not at each poll
st() { printf '{"method":"runner.progress","params":{"subscription":"w1","seq":%s,"runner_id":"%s","event":"stalled","stalled_polls":%s%s}}' "$1" "$runner" "$2" "${3:+,\"last_error\":\"$3\"}"; }
answer runner.wait '"notify":['"$(st 1 3),$(st 2 4),$(st 3 5),$(st 4 6 'connection refused')"'],"result":{"done":true,"timed_out":false,"jobs":[]}'
expect 0 runner wait "$runner"
contains "no news of the jobs from the Avatar server in 3 polls; still waiting" "$err"
contains "no news of the jobs from the Avatar server in 6 polls (last error: connection refused); still waiting" "$err"
lacks "in 4 polls" "$err"
lacks "in 5 polls" "$err"
answer runner.wait
requests
expect 0 --json runner results "$runner" && contains '"file_name":"iris.shuffled-0.csv"' "$out"
sent runner.list_results "{\"runner_id\":\"$runner\"}"
expect 0 --json runner export-yaml "$runner" && contains '"yaml":"kind: AvatarMetadata\n' "$out"
sent runner.export_yaml "{\"runner_id\":\"$runner\"}"
expect 0 --json runner delete "$runner" --jobs report,report_pia --yes && contains '"deleted_jobs":[{' "$out"
sent runner.delete "{\"runner_id\":\"$runner\",\"jobs\":[\"report\",\"report_pia\"]}"
expect 0 --json runner close "$runner" && contains '"closed":true' "$out"
sent runner.close "{\"runner_id\":\"$runner\"}"
expect 0 --json runs load "$set" && contains '"display_name":"iris-v1"' "$out"
sent manager.create_runner_from_id "{\"set_name\":\"$set\"}"
expect 0 --json runs load iris
sent manager.create_runner_from_name '{"display_name":"iris"}'
expect 0 --json watch "$set" --jobs job-a,job-b --wait-timeout 10
sent manager.watch_jobs "{\"set_name\":\"$set\",\"jobs\":[\"job-a\",\"job-b\"],\"timeout_s\":10.0}"
same 3 "$(wc -l <<<"$out")" "watch: one JSON line per notification, then the result"
contains "{\"subscription\":\"j1\",\"seq\":1,\"set_name\":\"$set\",\"jobs\":[{\"parameters_name\":\"standard\"" "$out"
contains '"done":true' "$(tail -n 1 <<<"$out")"
expect 0 --json watch --runner "$runner"
sent manager.watch_jobs "{\"runner_id\":\"$runner\",\"timeout_s\":3600.0}"
answer manager.watch_jobs '"result":{"subscription":"j1","set_name":"'"$set"'","done":true,"jobs":[{"name":"j","set_name":"'"$set"'","status":"error","exception":"boom"}]}'
expect 8 --json watch "$set"
answer manager.watch_jobs '"result":{"subscription":"j1","set_name":"'"$set"'","done":false,"jobs":[]}'
expect 4 --json watch "$set" && contains "not done after 3600 s" "$err"
answer manager.watch_jobs
requests

# create-from-yaml: a regular file goes as a descriptor, a pipe inline.
printf 'kind: AvatarMetadata\n' >"$work/r.yaml"
expect 0 runner create-from-yaml again "$work/r.yaml"
requests
contains '"params":{"set_name":"again","fd":{"fd":0}},"fds":[{"type":"regular","access":"r"}],"read":[{"param":"fd","bytes":21,"head":"kind: AvatarMetadata."}]' "$req"
printf 'kind: AvatarMetadata\n' | "$ctl" runner create-from-yaml again - >/dev/null
sent manager.create_runner_from_yaml '{"set_name":"again","yaml":"kind: AvatarMetadata\n"}'

# Downloads: into a file avatarctl creates (0644 less the umask), byte for byte; never over an
# existing file without --force; "-o -" hands over stdout as it is (a pipe, a file).
umask 022
expect 0 --json runner download "$runner" report -o "$work/r.pdf"
same_file "$dir/want-report" "$work/r.pdf" "binary download into a file"
same 644 "$(mode_of "$work/r.pdf")" "mode of a downloaded file"
contains "\"path\":\"$work/r.pdf\"" "$out"
requests
contains "\"params\":{\"runner_id\":\"$runner\",\"result\":\"report\",\"fd\":{\"fd\":0}},\"fds\":[{\"type\":\"regular\",\"access\":\"w\"}]" "$req"
printf 'keep me' >"$work/keep.pdf"
expect 9 runner download "$runner" report -o "$work/keep.pdf" && contains "$work/keep.pdf exists; not overwritten (use --force" "$err"
same "keep me" "$(cat "$work/keep.pdf")" "an existing file is left alone"
nothing_sent "download onto an existing file"
expect 0 runner download "$runner" report_pia --table iris -o "$work/keep.pdf" --force
same_file "$dir/want-pia" "$work/keep.pdf" "--force replaces the file"
(umask 077 && "$ctl" runner download "$runner" shuffled --table iris --index 0 -o "$work/private.csv" >/dev/null)
same 600 "$(mode_of "$work/private.csv")" "the umask applies to downloaded files"
same_file "$dir/want-shuffled" "$work/private.csv" "text download into a file"
"$ctl" runner download "$runner" report -o - 2>"$dir/err" | cat >"$work/piped.pdf"
same_file "$dir/want-report" "$work/piped.pdf" "-o - into a pipe"
"$ctl" runner download "$runner" report_pia -o - >"$work/redirected.docx" 2>"$dir/err"
same_file "$dir/want-pia" "$work/redirected.docx" "-o - into a file"
requests
contains '"fds":[{"type":"fifo","access":"w"}]' "$req"
contains '"fds":[{"type":"regular","access":"w"}]' "$req"
answer runner.download '"error":{"code":-32014,"message":"The storage refused the object","data":{"name":"storage_error","retryable":false,"status":403}}'
expect 7 runner download "$runner" report -o "$work/failed.pdf" && contains "(storage_error)" "$err"
same no "$([ -e "$work/failed.pdf" ] && echo yes || echo no)" "a file whose download failed is removed"
answer runner.download
requests
# Without -o, stdout not a terminal: the result's bytes, through the descriptor, never a JSON
# envelope; so a pipeline gets the CSV.
"$ctl" runner download "$runner" shuffled 2>"$dir/err" | head -n 2 >"$dir/out"
same "sepal_length,species
5.1,setosa" "$(cat "$dir/out")" "runner download RUNNER shuffled | head -2"
requests
contains "\"params\":{\"runner_id\":\"$runner\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}},\"fds\":[{\"type\":\"fifo\",\"access\":\"w\"}]" "$req"
"$ctl" runner download iris report >"$work/by-name.pdf" 2>"$dir/err"
same_file "$dir/want-report" "$work/by-name.pdf" "a runner by its display name; binary bytes into a redirected stdout"
"$ctl" runner download 7c0a5a2e report_pia --table iris >"$work/by-prefix.docx" 2>"$dir/err"
same_file "$dir/want-pia" "$work/by-prefix.docx" "a runner by a unique prefix of its id"
requests
# --format json, without -o: the result inline, as the daemon returns it
expect 0 --format json runner download "$runner" shuffled && contains '"encoding":"utf-8","data":"sepal_length,species\n5.1,setosa\n4.9,versicolor\n"' "$out"
sent runner.download "{\"runner_id\":\"$runner\",\"result\":\"shuffled\"}"
mkdir -p "$work/cwd"
cd "$work/cwd" || exit 1
expect 0 --json runner download "$runner" report && contains '"path":"report.pdf"' "$out"
same_file "$dir/want-report" "$work/cwd/report.pdf" "binary result saved under the server's name"
expect 9 --json runner download "$runner" report
requests
# -o DIR: the result under the server's name in DIR
expect 0 runner download "$runner" shuffled --table iris -o sub/
same_file "$dir/want-shuffled" sub/iris.shuffled-0.csv "-o DIR: the server's name"
contains "saved shuffled -> sub/iris.shuffled-0.csv (47 bytes)" "$out"
requests
# No RESULT, -o DIR: every result file, under the server's names
expect 0 runner download "$runner" -o everything
same "iris.correlation.html
iris.distribution.html
iris.privacy.json
iris.report.pia.docx
iris.shuffled-0.csv
iris.signal.json
iris.unshuffled-0.csv
report.pdf
run_metadata.avatarize.json" "$(ls everything)" "runner download -o DIR: every result"
same_file "$dir/want-report" everything/report.pdf "runner download -o DIR: the report"
contains "Files written:" "$out"
contains "  everything/iris.shuffled-0.csv" "$out"
lacks "privacy_metrics_summary" "$(ls everything)"
expect 9 runner download "$runner" -o everything && contains "exists; not overwritten" "$err"
expect 0 --json runner download "$runner" -o everything --force
contains '"output_dir":"everything","files":[{"result":"shuffled","table":"iris","file_name":"iris.shuffled-0.csv","path":"everything/iris.shuffled-0.csv","bytes":47}' "$out"
requests
# A result too large to come inline is fetched through a descriptor into the server's name.
answer runner.download '"times":1,"error":{"code":-32602,"message":"The result is too large to return inline: pass a descriptor","data":{"name":"invalid_params","retryable":false}}'
expect 0 --json runner download "$runner" privacy_metrics --table iris && contains '"path":"iris.privacy.json"' "$out"
same_file "$dir/want-privacy" "$work/cwd/iris.privacy.json" "large result saved under the server's name"
methods
same "runner.download runner.list_results runner.download " "$calls" "calls of a download too large for inline"
expect 0 --json runner export-yaml "$runner" -o r.yaml && contains '"path":"r.yaml","bytes":' "$out"
same "kind: AvatarMetadata" "$(head -n 1 r.yaml)" "export-yaml -o"
expect 9 runner export-yaml "$runner" -o r.yaml
"$ctl" runner export-yaml "$runner" -o - | head -n 1 >"$dir/out"
same "kind: AvatarMetadata" "$(cat "$dir/out")" "export-yaml -o -"
cd "$dir" || exit 1
requests

# Waits: a failed job exits 8 with its exception; the deadline exits 4.
failed_job='"error":{"code":-32013,"message":"Job standard failed with exception: ValueError: k is too large","data":{"name":"job_failed","retryable":false,"job":"standard","status":"error","exception":"ValueError: k is too large\nat line 2","runner_id":"'"$runner"'"}}'
answer runner.wait "$failed_job"
expect 8 runner wait "$runner"
contains "avatarctl: job standard failed (error): ValueError: k is too large" "$err"
contains "  at line 2" "$err"
contains "avatarctl runner status $runner" "$err"
answer runner.wait '"result":{"runner_id":"'"$runner"'","done":false,"timed_out":true,"set_name":"'"$set"'","jobs":[]}'
expect 4 --json runner wait "$runner" --wait-timeout 5 && contains '"timed_out":true' "$out"
contains "the jobs are not done after 5 s; they continue on the server. Wait again with:" "$err"
contains "avatarctl runner wait $runner" "$err"
answer runner.wait
requests

# avatarize: the whole flow, with --json (stdout piped).
cd "$work" || exit 1
expect 0 --json avatarize iris.csv
methods
same "manager.create_runner runner.add_table runner.set_parameters runner.run runner.wait runner.list_results runner.download runner.download runner.download runner.download runner.download " \
     "$calls" "avatarize: the calls"
contains '{"method":"manager.create_runner","params":{"set_name":"iris"}}' "$req"
contains "{\"method\":\"runner.add_table\",\"params\":{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"data\":{\"fd\":0},\"file_name\":\"iris.csv\"},\"fds\":[{\"type\":\"regular\",\"access\":\"r\"}],\"read\":[{\"param\":\"data\",\"bytes\":32" "$req"
contains "{\"method\":\"runner.set_parameters\",\"params\":{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"k\":5}}" "$req"
contains "{\"method\":\"runner.run\",\"params\":{\"runner_id\":\"$runner\"}}" "$req"
contains "{\"method\":\"runner.wait\",\"params\":{\"runner_id\":\"$runner\",\"timeout_s\":86400.0}}" "$req"
contains "{\"method\":\"runner.download\",\"params\":{\"runner_id\":\"$runner\",\"result\":\"shuffled\",\"table\":\"iris\",\"fd\":{\"fd\":0}},\"fds\":[{\"type\":\"regular\",\"access\":\"w\"}]}" "$req"
contains "{\"method\":\"runner.download\",\"params\":{\"runner_id\":\"$runner\",\"result\":\"report\",\"fd\":{\"fd\":0}}" "$req"
contains "\"result\":\"report_pia\",\"table\":\"iris\",\"fd\":{\"fd\":0}}" "$req"
same_file "$dir/want-shuffled" iris-avatars/iris.shuffled-0.csv "avatarize: shuffled"
same_file "$dir/want-privacy" iris-avatars/iris.privacy.json "avatarize: privacy metrics"
same_file "$dir/want-signal" iris-avatars/iris.signal.json "avatarize: signal metrics"
same_file "$dir/want-report" iris-avatars/report.pdf "avatarize: report (binary)"
same_file "$dir/want-pia" iris-avatars/iris.report.pia.docx "avatarize: PIA report (binary)"
same 644 "$(mode_of iris-avatars/report.pdf)" "avatarize: file mode"
same 5 "$(ls iris-avatars | wc -l)" "avatarize: files in the output directory"
same 1 "$(wc -l <<<"$out")" "avatarize: one JSON object"
contains "{\"runner_id\":\"$runner\",\"display_name\":\"iris\",\"set_name\":\"$set\",\"table\":\"iris\",\"input\":\"iris.csv\",\"k\":5,\"waited\":true,\"done\":true,\"jobs\":[{\"parameters_name\":\"standard\"" "$out"
contains '"output_dir":"iris-avatars","files":[{"result":"shuffled","table":"iris","file_name":"iris.shuffled-0.csv","path":"iris-avatars/iris.shuffled-0.csv","bytes":47},{"result":"privacy_metrics"' "$out"
contains '{"result":"report","table":null,"file_name":"report.pdf","path":"iris-avatars/report.pdf","bytes":24}' "$out"
# stderr not a terminal: a plain line per change, whatever the output format
contains "upload 32/32 bytes" "$err"
contains "job standard finished 1" "$err"
contains "downloaded report -> iris-avatars/report.pdf (24 bytes)" "$err"
lacks "$(printf '\r')" "$err"

# The files exist now: a second run refuses before sending anything, unless --force.
cp iris-avatars/report.pdf "$dir/report-before"
expect 9 avatarize iris.csv && contains "iris-avatars/iris.shuffled-0.csv exists; not overwritten" "$err"
nothing_sent "avatarize over existing files"
expect 0 --json avatarize iris.csv --force
methods
same 11 "$(wc -w <<<"$calls")" "avatarize --force: the calls"
same_file "$dir/want-report" iris-avatars/report.pdf "avatarize --force: the report"
# --resume: a finished runner's results; the files already there are kept, the others fetched.
mkdir -p late && printf 'old' >late/iris.shuffled-0.csv
expect 0 --json avatarize --resume "$runner" -o late
methods
same "runner.get_status runner.list_results runner.download runner.download runner.download runner.download " "$calls" \
     "avatarize --resume of a finished runner: the calls"
same "old" "$(cat late/iris.shuffled-0.csv)" "avatarize --resume: a file there is kept"
same_file "$dir/want-report" late/report.pdf "avatarize --resume: the report"
contains '{"result":"shuffled","table":"iris","file_name":"iris.shuffled-0.csv","path":"late/iris.shuffled-0.csv","kept":true}' "$out"
# by display name, into its NAME-avatars; a running one is waited for first
rm -rf iris-avatars
answer runner.get_status '"times":1,"result":{"runner_id":"'"$runner"'","display_name":"iris","state":"running","set_name":"'"$set"'","tables":["iris"],"jobs":[]}'
expect 0 avatarize --resume iris
methods
same "runner.list runner.get_status runner.wait runner.list_results runner.download runner.download runner.download runner.download runner.download " \
     "$calls" "avatarize --resume of a running runner: the calls"
same 5 "$(ls iris-avatars | wc -l)" "avatarize --resume NAME: the files in NAME-avatars"
contains "Avatarized the table iris as 'iris'." "$out"
# a configuring runner without a table needs the FILE; with it, the flow goes on from there
answer runner.get_status '"result":{"runner_id":"'"$runner"'","display_name":"iris","state":"configuring","set_name":null,"tables":[],"jobs":[]}'
expect 2 avatarize --resume "$runner" -o r2 && contains "the runner has no table yet: give the FILE to upload" "$err"
requests
expect 0 avatarize --resume "$runner" iris.csv -o r2 --no-wait
methods
same "runner.get_status runner.add_table runner.export_yaml runner.set_parameters runner.run " "$calls" \
     "avatarize --resume of a runner without a table: the calls"
answer runner.get_status '"result":{"runner_id":"'"$runner"'","display_name":"iris","state":"failed","set_name":"'"$set"'","tables":["iris"],"jobs":[]}'
answer runner.export_yaml '"result":{"runner_id":"'"$runner"'","yaml":"kind: AvatarParameters\nmetadata:\n  name: standard\n"}'
expect 0 avatarize --resume "$runner" --k 8 -o r3 --no-wait
answer runner.export_yaml
requests
contains "{\"method\":\"runner.update_parameters\",\"params\":{\"runner_id\":\"$runner\",\"table_name\":\"iris\",\"k\":8}}" "$req" 
contains "{\"method\":\"runner.run\",\"params\":{\"runner_id\":\"$runner\",\"ignore_warnings\":true}}" "$req"
answer runner.get_status '"result":{"runner_id":"'"$runner"'","display_name":"iris","state":"uploading","set_name":null,"tables":[],"jobs":[]}'
expect 9 avatarize --resume "$runner" && contains "is busy (uploading)" "$err"
answer runner.get_status
expect 6 avatarize --resume nobody && contains "no runner 'nobody'" "$err"
requests

# Names, table, k, jobs and output directory.
expect 0 avatarize iris.csv --name "my run" --table flowers --k 12 --jobs standard -o out/deep
requests
contains '{"method":"manager.create_runner","params":{"set_name":"my run"}}' "$req"
contains '"table_name":"flowers","data":{"fd":0},"file_name":"iris.csv"}' "$req"
contains '"table_name":"flowers","k":12}' "$req"
contains "{\"method\":\"runner.run\",\"params\":{\"runner_id\":\"$runner\",\"jobs\":[\"standard\"]}}" "$req"
same "flowers.shuffled-0.csv" "$(ls out/deep)" "avatarize --jobs standard: the shuffled table only"
expect_stdin iris.csv 0 --json avatarize - --name piped --output piped
requests
contains '"table_name":"piped","data":{"fd":0}},"fds":[{"type":"regular","access":"r"}]' "$req"
contains '"output_dir":"piped"' "$out"

# --no-wait: the runner id, the run id and the commands that go on with it: no file names
# guessed before the server names them.
expect 0 --json avatarize iris.csv --no-wait --output later
methods
same "manager.create_runner runner.add_table runner.set_parameters runner.run " "$calls" "avatarize --no-wait: the calls"
contains '"waited":false,"done":false' "$out"
contains "\"commands\":[\"avatarctl avatarize --resume $runner -o later\",\"avatarctl runner rm $runner\"]" "$out"
same no "$([ -e later ] && echo yes || echo no)" "avatarize --no-wait creates no directory"
expect 0 -q avatarize iris.csv --no-wait --output later && same "$runner" "$out" "avatarize -q: the runner id"
same "" "$err" "avatarize -q: no progress"
requests

# A failed job: its exception, exit 8, the runner kept with the commands that go on with it
# and remove it, the summary with the error; nothing downloaded.
answer runner.wait "$failed_job"
expect 8 --json avatarize iris.csv --output failed
contains "avatarctl: job standard failed (error): ValueError: k is too large" "$err"
contains "avatarctl: the runner $runner ('iris') is kept. Go on with it:
  avatarctl avatarize --resume $runner -o failed
or remove it and its jobs on the server:
  avatarctl runner rm $runner" "$err"
contains '"error":{"name":"job_failed","message":"Job standard failed with exception: ValueError: k is too large","job":"standard","status":"error","exception":"ValueError: k is too large\nat line 2"}' "$out"
methods
same "manager.create_runner runner.add_table runner.set_parameters runner.run runner.wait runner.get_status " "$calls" "avatarize with a failed job: the calls"
same no "$([ -e failed ] && echo yes || echo no)" "avatarize with a failed job creates no directory"
# --rm: a failed run removes its runner and its jobs
expect 8 --json avatarize iris.csv --output failed --rm
contains "avatarctl: removed the runner $runner and 5 jobs on the server (--rm)." "$err"
lacks "is kept" "$err"
contains '"removed":true' "$out"
methods
same "manager.create_runner runner.add_table runner.set_parameters runner.run runner.wait runner.get_status runner.delete runner.close " \
     "$calls" "avatarize --rm with a failed job: the calls"
answer runner.wait
# the daemon going away while waiting: the runner is kept and said so
answer runner.wait '"hangup":true'
expect 3 avatarize iris.csv --output gone
contains "the daemon closed the connection before answering" "$err"
contains "avatarctl: the runner $runner ('iris') is kept. Go on with it:" "$err"
answer runner.wait
# A failed upload: the runner exists, the summary says so.
answer runner.add_table '"error":{"code":-32014,"message":"Upload refused","data":{"name":"storage_error","retryable":false}}'
expect 7 --json avatarize iris.csv --output failed && contains "avatarctl: avatarize: runner add-table: Upload refused (storage_error)" "$err"
contains "\"runner_id\":\"$runner\"" "$out"
contains "  avatarctl avatarize --resume $runner iris.csv -o failed" "$err"
answer runner.add_table
cd "$dir" || exit 1
requests

# On a terminal: the progress display, the summary, the commands of --no-wait, Ctrl-C.
if command -v script >/dev/null 2>&1; then
        export COLUMNS=200
        cd "$work" || exit 1
        rm -rf iris-avatars
        human_rc avatarize iris.csv
        same 0 "$rc" "avatarize on a terminal: exit status"
        contains "upload  iris.csv  16 B / 32 B   50%" "$out"
        contains "standard         pending   40%" "$out"
        contains "signal_metrics   pending   50%" "$out"
        contains "report_pia       finished 100%" "$out"
        contains "downloaded report -> iris-avatars/report.pdf (24 bytes)" "$out"
        contains "Avatarized iris.csv as 'iris'." "$out"
        contains "Runner:  $runner" "$out"
        contains "Run id:  $set" "$out"
        contains "Files written:
  iris-avatars/iris.shuffled-0.csv   47 bytes
  iris-avatars/iris.privacy.json     54 bytes
  iris-avatars/iris.signal.json      57 bytes
  iris-avatars/report.pdf            24 bytes
  iris-avatars/iris.report.pia.docx  30 bytes" "$out"
        same_file "$dir/want-report" iris-avatars/report.pdf "avatarize on a terminal: report"

        # stdout on a terminal, stderr not: plain progress lines.
        script -qec "$(printf '%q ' "$ctl" avatarize iris.csv --output plain) 2>$(printf '%q' "$dir/plain")" /dev/null </dev/null >"$dir/pty"
        err=$(cat "$dir/plain")
        contains "upload 16/32 bytes" "$err"
        contains "upload 32/32 bytes" "$err"
        contains "job standard pending 0.4" "$err"
        contains "job standard finished 1" "$err"
        contains "downloaded shuffled -> plain/iris.shuffled-0.csv (47 bytes)" "$err"
        contains "downloaded report_pia -> plain/iris.report.pia.docx (30 bytes)" "$err"
        lacks "$(printf '\033')" "$err"

        human_rc avatarize iris.csv --no-wait --output later
        contains "Started avatarizing iris.csv as 'iris'." "$out"
        contains "The jobs run on the Avatar server. Wait for them and download the results into later with:
  avatarctl avatarize --resume $runner -o later
or step by step:
  avatarctl runner wait $runner
  avatarctl runner download $runner -o later" "$out"
        lacks "iris.shuffled" "$out"

        answer runner.wait "$failed_job"
        human_rc avatarize iris.csv --output failed
        same 8 "$rc" "avatarize with a failed job on a terminal: exit status"
        contains "avatarctl: job standard failed (error): ValueError: k is too large" "$out"
        answer runner.wait

        # Ctrl-C while waiting: the run goes on; the commands that reattach. The fake sends a
        # job update as soon as runner.wait reaches it, then holds the answer until avatarctl
        # hangs up: once the update shows, avatarctl is waiting.
        answer runner.wait '"delay_ms":'"$(($(scaled 60) * 1000))"',"notify":[{"method":"runner.progress","params":{"subscription":"w1","seq":1,"runner_id":"'"$runner"'","event":"jobs","jobs":[{"parameters_name":"standard","kind":"standard","name":"job-standard-1","status":"running","progress":0.25,"done":false,"exception":""}]}}]'
        rm -f "$dir/fifo"
        mkfifo "$dir/fifo"
        script -qec "$(printf '%q ' "$ctl" avatarize iris.csv --output interrupted)" /dev/null <"$dir/fifo" >"$dir/pty" 2>&1 &
        pid=$!
        exec 9>"$dir/fifo"
        wait_for_line 20 "$dir/pty" "standard +running +25%" ||
                echo "# avatarctl did not show the job update of runner.wait"
        printf '\003' >&9
        exec 9>&-
        wait "$pid"
        rc=$?
        out=$(tr -d '\r' <"$dir/pty")
        same 130 "$rc" "avatarize interrupted: exit status"
        contains "avatarctl: interrupted; the run continues on the server and the runner $runner is kept. Go on with it:
  avatarctl avatarize --resume $runner -o interrupted
or remove it and its jobs on the server:
  avatarctl runner rm $runner" "$out"
        same no "$([ -e interrupted ] && echo yes || echo no)" "an interrupted avatarize creates no directory"
        answer runner.wait

        # The runner commands for people.
        human_rc runner create iris --seed 1
        contains "Runner:       $runner" "$out"
        contains "State:        configuring" "$out"
        contains "Created:      2026-05-01T09:12:03Z" "$out"
        contains "Add a table with:
  avatarctl runner add-table $runner TABLE FILE" "$out"
        human_rc runner list
        contains "RUNNER                                NAME  STATE     RUN ID                                TABLES  JOBS DONE  OWNER" "$out"
        human_rc runner add-table "$runner" iris iris.csv
        contains "Added table iris to runner $runner: 32 bytes uploaded." "$out"
        contains "avatarctl runner set-parameters $runner iris --k 5" "$out"
        human_rc runner add-link "$runner" patients.id visits.patient_id
        same "Linked patients.id to visits.patient_id (linear_sum_assignment)." "$out" "add-link on a terminal"
        human_rc runner set-parameters "$runner" iris --k 2 --column-weights a=1
        contains "Parameters of table iris:
  k               2
  column_weights  {\"a\":1.0}" "$out"
        contains "avatarctl: warning: You have set k = 2, the minimum." "$out"
        human_rc runner advise "$runner"
        contains "Applied the server's advice to runner $runner:
  iris:
    k    12
    ncp  4" "$out"
        human_rc runner run "$runner"
        contains "Started run $set of runner $runner." "$out"
        contains "JOB              STATUS   PROGRESS  NAME                   EXCEPTION" "$out"
        contains "Follow it with:
  avatarctl runner wait $runner" "$out"
        human_rc runner wait "$runner"
        contains "standard         finished 100%" "$out"
        contains "privacy_metrics  finished      100%  job-privacy_metrics-1  -" "$out"
        human_rc runner results "$runner"
        contains "JOB              STATUS    RESULT           TABLE  INDEX  FILE" "$out"
        contains "standard         finished  figures          iris       1  iris.distribution.html" "$out"
        contains "privacy_metrics  finished  -                -          0  privacy_metrics_summary.json" "$out"
        contains "avatarctl runner download $runner shuffled --table iris -o iris.shuffled-0.csv" "$out"
        human_rc runner download "$runner" shuffled --table iris
        same "sepal_length,species
5.1,setosa
4.9,versicolor" "$out" "inline text on a terminal"
        human_rc runner download "$runner" report -o -
        same 2 "$rc" "a binary result onto a terminal: exit status"
        contains "the report is a binary file: redirect stdout, or use -o FILE" "$out"
        rm -f term.pdf
        human_rc runner download "$runner" report -o term.pdf
        contains "downloaded report -> term.pdf (24 bytes)" "$out"
        same_file "$dir/want-report" term.pdf "download on a terminal"
        human_rc runner export-yaml "$runner"
        contains "kind: AvatarMetadata" "$out"
        human_rc runner delete "$runner" --yes && contains "Deleted 5 jobs, failed 0." "$out"
        human_rc runner close "$runner"
        contains "Closed runner $runner; its jobs stay on the server. To load the run again:
  avatarctl runs load $set" "$out"
        human_rc runs load "$set"
        contains "Name:         iris-v1" "$out"
        contains "Download its results with:
  avatarctl runner download $runner shuffled --table iris -o iris.shuffled-0.csv" "$out"
        contains "  avatarctl runner download $runner figures --table iris --index 1 -o iris.distribution.html" "$out"
        contains "  avatarctl runner download $runner report_pia --table iris -o iris.report.pia.docx" "$out"
        human_rc watch "$set"
        contains "standard         pending    40%  job-standard-1" "$out"
        contains "All jobs are done:" "$out"
        cd "$dir" || exit 1
        requests
fi

echo "RESULT: avatarctl passed=$passes failed=$failures"
[ "$failures" -eq 0 ]
