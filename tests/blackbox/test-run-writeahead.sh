#!/usr/bin/env bash
# Black-box tests of runner.run's write-ahead (issue 15, orphaned jobs): a daemon killed
# (SIGKILL) or stopped (SIGTERM, no drain) while runner.run creates its jobs comes back with a
# runner that knows every job the simulator holds for its set (GET /jobs?set_name=), shows
# it as interrupted, and `avatarctl runner run` or `avatarctl avatarize --resume` finishes the
# run in the same set without creating a job twice; a job created upstream whose answer was
# lost is adopted from the set, before the reply and at the next start; a second run keeps
# the first run's set and jobs (past_sets). No job of the simulator is left that no runner
# knows.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

# the job clock stands still unless the test moves it
start_sim --api-key "$SIM_KEY" --job-step-ms 0 || { fail "avatar-sim starts"; finish; exit $?; }
runner_conf >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

# sim_set_jobs SET: "parameters_name name" of every job the simulator holds for SET, sorted.
sim_set_jobs() {
        sim_api GET "/jobs?set_name=$1" | grep -o '"name":"[^"]*","set_name":"[^"]*","parameters_name":"[^"]*"' |
                sed 's/^"name":"\([^"]*\)","set_name":"[^"]*","parameters_name":"\([^"]*\)"$/\2 \1/' | sort
}

# runner_jobs R: "parameters_name name" of every job runner.get_status shows, sorted.
runner_jobs() {
        "$AVATARCTL" --json --timeout "$(scaled 30)" call runner.get_status "{\"runner_id\":\"$1\"}" 2>/dev/null |
                grep -o '"parameters_name":"[^"]*","kind":"[^"]*","name":"[^"]*"' |
                sed 's/^"parameters_name":"\([^"]*\)","kind":"[^"]*","name":"\([^"]*\)"$/\1 \2/' | sort
}

# runner_knows_set R SET: whether the runner shows exactly the jobs the simulator holds for
# SET (for wait_until).
runner_knows_set() {
        local want
        want=$(sim_set_jobs "$2")
        [ -n "$want" ] && [ "$(runner_jobs "$1")" = "$want" ]
}

# status_of R: runner.get_status in $OUT.
status_of() {
        ctl runner.get_status "{\"runner_id\":\"$1\"}"
}

# run_set R: the set of R's run as its state file records it (written before any POST /jobs).
run_set() {
        tr -d ' \n' <"$STATE/runners/$1.json" | grep -o '"run":{[^}]*}' | grep -o '"set_name":"[^"]*"' | cut -d'"' -f4
}

# state_job_names R: the job names R's state file holds, sorted, each once.
state_job_names() {
        tr -d ' \n' <"$STATE/runners/$1.json" | grep -o '"name":"[0-9a-f-]\{36\}"' | cut -d'"' -f4 | sort -u
}

# kill_daemon: SIGKILL, and wait for it to be gone.
kill_daemon() {
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
        DAEMON_PID=""
}

# run_held_at R N: starts runner.run of R in the background with every POST /jobs held, lets
# the first N-1 through one by one, and returns once the Nth is held (the daemon is then
# inside its POST, the jobs before it created).
run_held_at() {
        local i
        sim_hold "POST /api/jobs"
        pcall_bg "$TMP/run.out" -t 120 runner.run "{\"runner_id\":\"$1\"}"
        for i in $(seq 1 "$2"); do
                wait_until 30 sim_held 1 || return 1
                [ "$i" -lt "$2" ] || break
                [ "$(sim_release "POST /api/jobs")" = 1 ] || return 1
                # the next POST comes only once the daemon saw this one's answer
                wait_until 30 sim_posts_at_least $((posts_before + i + 1)) || return 1
        done
}

# sim_posts: how many POST /jobs the simulator received in all.
sim_posts() {
        local n
        n=$(sim_control stats | grep -o '"POST /api/jobs":[0-9]*' | head -n 1 | cut -d: -f2)
        echo "${n:-0}"
}

# sim_posts_at_least N: whether the simulator received N POST /jobs in all.
sim_posts_at_least() {
        [ "$(sim_posts)" -ge "$1" ]
}

# check_finished_once R SET LABEL: the run of R is finished by a resumption in SET: five jobs,
# one per parameters name, the runner knows all of them.
check_finished_once() {
        local jobs
        jobs=$(sim_set_jobs "$2")
        check_eq "$3: the set holds five jobs" "5" "$(count_lines "$jobs")"
        check_eq "$3: one job per parameters name (none created twice)" \
                "privacy_metrics report report_pia signal_metrics standard" \
                "$(cut -d' ' -f1 <<<"$jobs" | sort -u | tr '\n' ' ' | sed 's/ $//')"
        check_eq "$3: the runner knows every job of its set" "$jobs" "$(runner_jobs "$1")"
}

# --- SIGKILL while POST /jobs is held: the 1st, 2nd and 4th job -------------------------------------
for n in 1 2 4; do
        R=$(new_iris_runner "killed-at-$n")
        posts_before=$(sim_posts)
        check "kill at job $n: POST /jobs number $n is held" run_held_at "$R" "$n"
        kill_daemon
        wait "$PCALL_PID" 2>/dev/null
        sim_unhold
        S=$(run_set "$R")
        check "kill at job $n: the state file names the run's set" is_uuid "$S"
        check_eq "kill at job $n: the state file holds the $((n - 1)) job(s) created" "$((n - 1))" \
                "$(state_job_names "$R" | grep -c .)"
        check_eq "kill at job $n: the simulator holds as many" "$((n - 1))" "$(count_lines "$(sim_set_jobs "$S")")"
        start_daemon || { fail "avatard restarts after SIGKILL"; finish; exit $?; }
        status_of "$R"
        check_match "kill at job $n: after the restart the runner is interrupted, in its set" \
                "\"state\":\"interrupted\",\"set_name\":\"$S\"" "$OUT"
        check_match "kill at job $n: the run's record shows the job being created" \
                "\"run\":\\{[^}]*\"creating\":\"[a-z_]+\"" "$OUT"
        if [ "$n" -gt 1 ]; then
                check "kill at job $n: the runner knows every job of the set" runner_knows_set "$R" "$S"
        else
                # no job yet, but a set: advice would replace the set the run is to finish in
                ctl runner.advise_parameters "{\"runner_id\":\"$R\"}"
                check_match "kill at job 1: advise_parameters is refused while the run is interrupted" \
                        'has a run interrupted in set' "$OUT"
        fi
        if [ "$n" = 2 ]; then
                # the command a user types: avatarctl runner run
                out=$("$AVATARCTL" --json --timeout "$(scaled 60)" runner run "$R" 2>&1)
                check_eq "kill at job $n: avatarctl runner run succeeds" "0" "$?"
        else
                ctl runner.run "{\"runner_id\":\"$R\"}"
                out="$OUT"
                check_eq "kill at job $n: runner.run succeeds" "0" "$CTL_RC"
        fi
        check_match "kill at job $n: the run is resumed in the same set" \
                "\"set_name\":\"$S\",\"replaced\":false,\"previous_set_name\":null,\"resumed\":true" "$out"
        check_finished_once "$R" "$S" "kill at job $n"
        status_of "$R"
        check_match "kill at job $n: the runner is running, its record gone" '"state":"running".*"run":null' "$OUT"
done
sim_tick 40
wait_runner "$R" 60
check_match "the last resumed run ends done" '"done":true,"timed_out":false' "$OUT"
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}}" --out "$TMP/shuffled.csv"
check_eq "its results download" "0" "$CTL_RC"
check "the shuffled table is there" test -s "$TMP/shuffled.csv"

# --- SIGKILL while the answer of the 3rd POST /jobs is held: the job exists upstream, the daemon
# was not told; the start reconciles ------------------------------------------------------------------
R=$(new_iris_runner killed-before-answer)
sim_fault '{"route":"POST /api/jobs","after":2,"hold_answer":true,"count":1}'
pcall_bg "$TMP/run3.out" -t 120 runner.run "{\"runner_id\":\"$R\"}"
check "answer held: the 3rd job is created and its answer held" wait_until 30 sim_held 1
kill_daemon
wait "$PCALL_PID" 2>/dev/null
sim_unhold
S=$(run_set "$R")
check_eq "answer held: the simulator holds three jobs of the set" "3" "$(count_lines "$(sim_set_jobs "$S")")"
check_eq "answer held: the state file knows two, and the third being created" "2" "$(state_job_names "$R" | grep -c .)"
check_match "answer held: ... the record names the job being created" '"creating":"privacy_metrics"' \
        "$(tr -d ' \n' <"$STATE/runners/$R.json")"
start_daemon || { fail "avatard restarts"; finish; exit $?; }
check "answer held: after the restart the runner adopts the third without being asked" \
        wait_until 20 runner_knows_set "$R" "$S"
status_of "$R"
check_match "answer held: still interrupted (two jobs to create)" '"state":"interrupted"' "$OUT"
ctl runner.run "{\"runner_id\":\"$R\"}"
check_eq "answer held: runner.run finishes the run" "0" "$CTL_RC"
check_match "answer held: resumed" '"resumed":true' "$OUT"
check_finished_once "$R" "$S" "answer held"

# --- a job created upstream whose answer is lost: adopted before the reply ------------------------
R=$(new_iris_runner lost-answer)
sim_fault '{"route":"POST /api/jobs","body":"truncated","count":1}'
raw=$(rpc runner.run "{\"runner_id\":\"$R\"}")
check_match "lost answer: runner.run fails naming the job" '"failed_job":"standard"' "$raw"
check_match "lost answer: ... and says the run can be finished" '"interrupted":true' "$raw"
S=$(json_str set_name "$raw")
check_eq "lost answer: the simulator created the standard job" "1" "$(count_lines "$(sim_set_jobs "$S")")"
check "lost answer: the runner adopted it at once" runner_knows_set "$R" "$S"
status_of "$R"
check_match "lost answer: the runner is interrupted" '"state":"interrupted"' "$OUT"
ctl runner.run "{\"runner_id\":\"$R\"}"
check_eq "lost answer: runner.run finishes the run" "0" "$CTL_RC"
check_finished_once "$R" "$S" "lost answer"

# --- the same, the daemon killed while it reads the set: adopted at the next start ---------------
R=$(new_iris_runner lost-then-killed)
sim_fault '{"route":"POST /api/jobs","body":"truncated","count":1}'
sim_hold "GET /api/jobs" 1
pcall_bg "$TMP/run2.out" -t 120 runner.run "{\"runner_id\":\"$R\"}"
check "lost answer, killed: the daemon reads the set after the failed POST" wait_until 30 sim_held 1
kill_daemon
wait "$PCALL_PID" 2>/dev/null
sim_unhold
S=$(run_set "$R")
check_eq "lost answer, killed: the simulator holds the standard job" "1" "$(count_lines "$(sim_set_jobs "$S")")"
check_eq "lost answer, killed: the state file does not know it" "" "$(state_job_names "$R")"
start_daemon || { fail "avatard restarts"; finish; exit $?; }
check "lost answer, killed: after the restart the runner adopts it without being asked" \
        wait_until 20 runner_knows_set "$R" "$S"
check_eq "lost answer, killed: ... and saves it" "$(sim_set_jobs "$S" | cut -d' ' -f2)" "$(state_job_names "$R")"
ctl runner.run "{\"runner_id\":\"$R\"}"
check_eq "lost answer, killed: runner.run finishes the run" "0" "$CTL_RC"
check_finished_once "$R" "$S" "lost answer, killed"

# --- SIGTERM (no drain) while the 3rd POST /jobs is held; avatarize --resume finishes it -------------
stop_daemon
runner_conf "$(printf 'limits:\n  shutdown_timeout_s: 0')" >"$CONF"
start_daemon || { fail "avatard restarts without a drain"; finish; exit $?; }
R=$(new_iris_runner terminated)
posts_before=$(sim_posts)
check "SIGTERM: POST /jobs number 3 is held" run_held_at "$R" 3
stop_daemon
check_eq "SIGTERM: avatard exits 0" "0" "$?"
wait "$PCALL_PID" 2>/dev/null
check_match "SIGTERM: the caller is told, with the command that finishes the run" \
        "\"resume\":\"avatarctl runner run $R\".*\"name\":\"shutting_down\"" "$(cat "$TMP/run.out")"
check_match "SIGTERM: the log says the run is interrupted" "Runner $R: the daemon stops in the middle of its run" \
        "$(cat "$DAEMON_LOG")"
sim_unhold
S=$(run_set "$R")
check_eq "SIGTERM: the simulator holds two jobs of the set" "2" "$(count_lines "$(sim_set_jobs "$S")")"
runner_conf >"$CONF"
start_daemon || { fail "avatard restarts after SIGTERM"; finish; exit $?; }
check "SIGTERM: the runner knows both" runner_knows_set "$R" "$S"
status_of "$R"
check_match "SIGTERM: the runner is interrupted" '"state":"interrupted"' "$OUT"
mkdir -p "$TMP/out"
calls=$(status_num runner.wait)
"$AVATARCTL" avatarize --resume "$R" -o "$TMP/out" >"$TMP/resume.out" 2>"$TMP/resume.err" &
pid=$!
check "avatarize --resume goes on to wait" wait_for_calls runner.wait $((${calls:-0} + 1))
sim_tick 40
wait "$pid"
check_eq "avatarize --resume finishes the interrupted run" "0" "$?" || cat "$TMP/resume.err"
check_finished_once "$R" "$S" "SIGTERM"
check "avatarize --resume downloaded the avatars" test -s "$TMP/out/iris.shuffled-0.csv"

# --- a second run keeps the first run's set and jobs ------------------------------------------------
first=$(runner_jobs "$R")
ctl runner.run "{\"runner_id\":\"$R\",\"ignore_warnings\":true}"
check_eq "re-run succeeds" "0" "$CTL_RC"
S2=$(json_str set_name "$OUT")
check "re-run: a new set" test -n "$S2" -a "$S2" != "$S"
status_of "$R"
past=$(grep -o '"past_sets":\[.*\]' <<<"$OUT")
check_match "re-run: past_sets holds the first set" "\"set_name\":\"$S\"" "$past"
check_eq "re-run: ... with its five jobs" "$(cut -d' ' -f2 <<<"$first" | sort)" \
        "$(grep -o "\"set_name\":\"$S\",\"jobs\":\[[^]]*\]" <<<"$past" | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | sort)"
stop_daemon
start_daemon || { fail "avatard restarts"; finish; exit $?; }
status_of "$R"
check_match "re-run: past_sets survives a restart" "\"past_sets\":\\[.*\"set_name\":\"$S\"" "$OUT"

# --- on demand: get_status refresh adopts a job of the set the runner does not know --------------
R3=$(new_iris_runner refreshed)
ctl runner.run "{\"runner_id\":\"$R3\",\"jobs\":[\"standard\"]}"
check_eq "refresh: a run of the standard job alone" "0" "$CTL_RC"
S3=$(json_str set_name "$OUT")
sim_tick 40
wait_runner "$R3" 60
check_match "refresh: the run ends done; nothing follows the set any more" '"done":true,"timed_out":false' "$OUT"
J=$(sim_make_job "$S3" signal_metrics)
check "refresh: a job made in the runner's set behind its back" is_uuid "$J"
status_of "$R3"
check_no_match "refresh: the runner does not know it yet" "$J" "$OUT"
ctl runner.get_status "{\"runner_id\":\"$R3\",\"refresh\":true}"
check_eq "refresh: get_status refresh succeeds" "0" "$CTL_RC"
check "refresh: the runner adopts it from the poll it asked for" wait_until 20 runner_knows_set "$R3" "$S3"

# --- no job of the simulator that no runner knows ---------------------------------------------------
known=""
for f in "$STATE"/runners/*.json; do
        f=$(basename "$f" .json)
        known="$known $(state_job_names "$f" | tr '\n' ' ')"
done
orphans=""
for j in $(sim_api GET /jobs | grep -o '"name":"[0-9a-f-]\{36\}"' | cut -d'"' -f4); do
        case " $known " in
        *" $j "*) ;;
        *) orphans="$orphans $j" ;;
        esac
done
check_eq "no upstream job is orphaned" "" "$orphans"

check_no_sanitizer_reports
finish
