#!/usr/bin/env bash
# The upstream echoes the daemon's API key back, in each of avatar-sim's nine echo shapes
# (an error message with the key raw, \u-escaped, percent-encoded or in base64, a text/plain
# error, and normal answers whose every object holds the key raw, escaped, percent-encoded
# or in base64): the key reaches no reply of a read-role client, no line of the daemon's log
# and no file of its state directory, in any form (leak-check.py, written apart from the
# daemon's scrubber); the daemon says it removed it; and nothing legitimate is lost (health,
# jobs, a whole run with its upload and download, through /access, whose storage secret the
# daemon needs).
. "$(dirname "$0")/../blackbox/lib.sh"
. "$SOURCE_ROOT/tests/blackbox/sim-fixtures.sh"
. "$SOURCE_ROOT/tests/blackbox/runner-fixtures.sh"

LEAK_CHECK="$SOURCE_ROOT/tests/security/leak-check.py"
SHAPES="message escaped percent base64 text ok-raw ok-escaped ok-percent ok-base64"
SIM_KEY="echo-key-$(date +%s%N)-Zq"
REPLIES="$TMP/replies.txt"
: >"$REPLIES"

start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
export AVATAR_API_KEY="$SIM_KEY"

# The reader: another uid with the read role when the test can switch users, else this one.
READER_UID=64103
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
        as_reader() { setpriv --reuid="$READER_UID" --regid="$READER_UID" --clear-groups "$@"; }
else
        READER_UID=$(id -u)
        as_reader() { "$@"; }
fi
# rctl METHOD [PARAMS]: a call as the reader, its reply (and avatarctl's errors) kept in
# $REPLIES for the search and in $OUT.
rctl() {
        OUT=$(as_reader "$AVATARCTL" --json --timeout "$(scaled 30)" call "$@" 2>&1)
        CTL_RC=$?
        printf '%s\n' "$OUT" >>"$REPLIES"
}
# rrpc METHOD [PARAMS]: the same through the raw socket (the reply as it travelled).
rrpc() {
        OUT=$(RPC_WRAP=as_reader rpc "$@")
        printf '%s\n' "$OUT" >>"$REPLIES"
}

runner_conf "socket_mode: \"0666\"
access:
  read:
    users: [$READER_UID]" >"$CONF"
start_daemon || { fail "avatard starts"; finish; exit $?; }

# the account's data the reads below show: a set with a job, and a runner that has run
S=$(sim_make_set echo-set)
J=$(sim_make_job "$S" standard)
ctl manager.create_runner '{"set_name":"echo-run"}'
R=$(runner_id_of "$OUT")
ctl runner.add_table "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS"
check_eq "the runner's table is uploaded (GET /access answers carry the storage secret)" "0" "$CTL_RC"
ctl runner.set_parameters "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"k\":5}"
ctl runner.run "{\"runner_id\":\"$R\",\"jobs\":[\"standard\"]}"
check_eq "the runner runs" "0" "$CTL_RC"
rctl manager.get_last_jobs
check_match "without a fault the reader gets the last job as the server sent it" '"status":"' "$OUT"

# Every authenticated route the reader's calls reach (GET /health goes without the key: a
# server cannot echo what it was not sent).
for shape in $SHAPES; do
        sim_unhold
        sim_fault "{\"path\":\"/api/jobs\",\"echo\":\"$shape\"}"
        sim_fault "{\"path\":\"/api/results\",\"echo\":\"$shape\"}"
        # the control: the answer as the simulator sends it holds the key, and the checker sees it
        sim_api GET /jobs >"$TMP/raw-$shape.txt"
        check_match "$shape: the simulator's answer holds the key (the checker finds it)" '^LEAK' \
                "$("$LEAK_CHECK" "$SIM_KEY" "$TMP/raw-$shape.txt")"
        rctl manager.get_last_jobs '{"count":3}'
        case $shape in
        ok-*) check_match "$shape: get_last_jobs answers, the echo replaced" '"echo":"[^"]*\*\*\*' "$OUT" ;;
        *) check_match "$shape: get_last_jobs fails with the server's message, the echo replaced" \
                'avatar-sim echoes the credential: (https://echo.invalid/\?key=|[A-Za-z0-9+/]*)\*\*\*' "$OUT" ;;
        esac
        rrpc manager.get_last_jobs '{"count":3}'
        rctl manager.get_jobs
        rctl manager.get_job "{\"name\":\"$J\"}"
        rrpc manager.get_job "{\"name\":\"$J\"}"
        rctl manager.find_ids_by_name '{"set_name":"echo-set"}'
        rctl manager.get_last_results '{"count":3}'
        rctl manager.watch_jobs "{\"set_name\":\"$S\",\"timeout_s\":0.2}"
        # the runner's jobs, polled through the fault, are saved in its state when they change
        # (one step of the simulator's clock for each shape that answers: the job is not done
        # before the end)
        polls=$(sim_count "GET /api/jobs")
        case $shape in ok-*) sim_tick 1 ;; esac
        check "$shape: the daemon polled the runner's set through the fault" \
                wait_until 20 eval '[ "$(sim_count "GET /api/jobs")" -ge $((polls + 2)) ]'
        case $shape in
        ok-*) check "$shape: the runner's state holds the jobs as polled, the echo replaced" \
                grep -Eq '"echo": *"[^"]*\*\*\*' "$STATE/runners/$R.json" ;;
        esac
        cat "$STATE/runners/$R.json" >>"$TMP/states.txt"
        # the compatibility answer, which daemon.status shows
        sim_fault "{\"path\":\"/api/check_client\",\"echo\":\"$shape\"}"
        rctl manager.verify_compatibility '{"refresh":true}'
        rctl daemon.status
        sim_unhold
        rctl manager.verify_compatibility '{"refresh":true}'
        check_eq "$shape: the compatibility answer is good again" "0" "$CTL_RC"
done
sim_unhold

check_match "the daemon counts the answers it took a secret out of" '"secrets_removed":[1-9]' \
        "$("$AVATARCTL" --json call daemon.status 2>&1)"
check_match "the daemon's log says an answer held a secret, naming the request" \
        "GET http://127\.0\.0\.1:$SIM_PORT/api/jobs: the answer held a secret of the daemon's" "$(cat "$DAEMON_LOG")"

# the compatibility answer's own words (a message of the server like any other): the key in
# it, a line break, an escape sequence, and far too much of it
long=$(printf 'x%.0s' $(seq 1 5000))
sim_control compat "{\"status\":\"incompatible\",\"message\":\"bad key $SIM_KEY\\nline two \\u001b[31mred $long\",\"most_recent_compatible_client\":\"9.9 $SIM_KEY\"}" >/dev/null
rrpc manager.verify_compatibility '{"refresh":true}'
check_match "an incompatible answer: the server's message in the error, the key replaced" \
        '"message":"The Avatar server says this client is incompatible. Server message: bad key \*\*\* line two  \[31mred x' "$OUT"
msg=$(json_raw_str message "$OUT")
check "... on one line, bounded (${#msg} bytes)" test "${#msg}" -lt 2600
check_match "... and the version it names, the key replaced" '"most_recent_compatible_client":"9\.9 \*\*\*"' "$OUT"
rctl daemon.status
sim_control compat '{"status":"compatible","message":"Client is up to date","most_recent_compatible_client":null}' >/dev/null
rctl manager.verify_compatibility '{"refresh":true}'
check_eq "the compatibility answer is good again" "0" "$CTL_RC"

# nothing was lost on the way: the run finishes and its result downloads
sim_tick 30
ctl runner.wait "{\"runner_id\":\"$R\",\"timeout_s\":30}"
check_eq "the run finishes" "0" "$CTL_RC"
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"table\":\"iris\"}"
check_eq "its shuffled table downloads (GET /access, S3 with the storage secret)" "0" "$CTL_RC"
check_match "... with the input's header" '"data":"sepal' "$OUT"
rctl manager.get_jobs
check_no_match "the reader gets the jobs as the server sent them again" '"echo"' "$OUT"

# the search, by a checker written apart from the daemon's scrubber
stop_daemon
out=$("$LEAK_CHECK" "$SIM_KEY" "$REPLIES" 2>&1)
check "the key reached no reply of the reader, in no form ($(count_lines "$(cat "$REPLIES")") lines)" \
        test "$out" = "no leak in 1 file(s)"
[ "$out" = "no leak in 1 file(s)" ] || echo "$out" | head -n 20 | sed 's/^/# /'
out=$("$LEAK_CHECK" "$SIM_KEY" "$DAEMON_LOG" 2>&1)
check "the key reached no line of the daemon's log (debug level), in no form" test "$out" = "no leak in 1 file(s)"
[ "$out" = "no leak in 1 file(s)" ] || echo "$out" | head -n 20 | sed 's/^/# /'
out=$("$LEAK_CHECK" "$SIM_KEY" "$STATE" "$TMP/states.txt" 2>&1)
check_match "the key reached no file of the state directory, in no form (at each step)" '^no leak in [1-9][0-9]* file' \
        "$out"
finish
