#!/usr/bin/env bash
# Faults: a SIGKILL loop. Each iteration starts a whole avatarize and kills the daemon at a
# point chosen from a printed seed: request N of a route of the flow (the upload, the set, a
# job's creation, a poll, a results listing, a download), held at the simulator until the
# kill, an event rather than a delay; half of the time only its answer is held, once it took
# effect upstream. Then the daemon starts again on the same state
# directory, the CLI's one resume command (avatarctl avatarize --resume) finishes the run,
# and the invariants are checked: the run is done with byte-exact results, no job upstream
# that no runner lists, no duplicate job, no multipart upload left.
#
#   FAULT_SEED=N         reproduces a run (the seed is printed first)
#   FAULT_ITERATIONS=N   iterations (default 20)
#   FAULT_MINUTES=M      stop starting iterations after M minutes (scripts/soak)
. "$(dirname "$0")/faults-lib.sh"

SEED=${FAULT_SEED:-$(($(date +%s%N) % 1000000007))}
ITERATIONS=${FAULT_ITERATIONS:-20}
MINUTES=${FAULT_MINUTES:-0}
echo "# seed $SEED: FAULT_SEED=$SEED reproduces this run ($ITERATIONS iterations)"
RANDOM=$SEED

# Kill points: "ROUTE|HOW-MANY-OF-THEM-THE-FLOW-MAKES|TABLE" (iris, or the big table whose
# upload is multipart).
KILL_POINTS=(
        "GET /api/upload_url|1|iris"
        "PUT /storage/{bucket}/{key}|1|iris"
        "PUT /api/resources/{display_name}|1|iris"
        "POST /api/jobs|5|iris"
        "POST /api/jobs|5|iris"
        "GET /api/jobs|2|iris"
        "GET /api/results/{job}|5|iris"
        "POST /api/access/batch|5|iris"
        "GET /storage/{bucket}/{key}|5|iris"
        "$R_MP_CREATE|1|big"
        "$R_MP_PART|2|big"
        "$R_MP_COMPLETE|1|big"
)

faults_start || { fail "avatar-sim and avatard start"; finish; exit $?; }
BIG="$TMP/big.csv"
make_csv "$BIG" 200000

t_end=0
[ "$MINUTES" -gt 0 ] && t_end=$(($(date +%s) + MINUTES * 60))
reached=0
i=0
while [ "$i" -lt "$ITERATIONS" ]; do
        i=$((i + 1))
        [ "$t_end" -gt 0 ] && [ "$(date +%s)" -ge "$t_end" ] && { i=$((i - 1)); break; }
        IFS='|' read -r route max table <<<"${KILL_POINTS[RANDOM % ${#KILL_POINTS[@]}]}"
        n=$((RANDOM % max + 1))
        # half the kill points hold the answer only: the request took effect upstream
        how=""
        [ $((RANDOM % 2)) = 1 ] && how=answer
        file=$IRIS
        [ "$table" = big ] && file=$BIG
        name="loop-$i"
        L="#$i ($route #$n${how:+, answer})"
        echo "# iteration $i: SIGKILL at request $n of $route (${how:-request} held; $table)"
        rule=$(hold_at "$route" "$n" $how)
        "$AVATARCTL" --timeout "$(scaled 120)" avatarize "$file" --name "$name" -o "$TMP/out-$i" \
                >"$TMP/av.out" 2>"$TMP/av.err" </dev/null &
        av=$!
        if wait_until 30 rule_held "$rule" "$av"; then
                reached=$((reached + 1))
                pass "$L: the kill point is reached"
        else
                # the flow did not make that request (it ended first): killed at rest
                wait "$av"
                pass "$L: the flow ended before the kill point (exit $?): killed at rest"
        fi
        kill_daemon KILL
        wait "$av" 2>/dev/null
        sim_unhold
        start_daemon || { fail "$L: avatard starts again"; break; }
        t0=$(test_now_ms)
        resume_avatarize "$name" "$file" "$TMP/out-$i"
        # (its wait is bounded by avatarctl's --timeout)
        record_wait "$L: avatarize --resume" $(($(test_now_ms) - t0)) $(($(scaled 120) * 1000)) \
                "$([ "$RC" != 0 ] && echo true || echo false)" "$([ "$RC" = 0 ] && echo true || echo false)"
        check_eq "$L: avatarize --resume finishes the run" "0" "$RC"
        [ "$RC" = 0 ] || printf '#   %s\n' "$(tail -n 5 <<<"$ERR")"
        R=$(runner_by_name "$name")
        check_match "$L: the runner is finished" '"state":"finished"' "$(runner_json "$R")"
        check_results_exact "$L" "$R" "$TMP/out-$i"
        check_invariants "$L"
        "$AVATARCTL" runner rm "$R" --yes >/dev/null 2>&1
        clean_upstream
        reset_journals
        rm -rf "$TMP/out-$i"
done
echo "# seed $SEED: $i iterations, $reached kill points reached"
check "at least half of the kill points were reached ($reached of $i)" test $((reached * 2)) -ge "$i"

check_no_sanitizer_reports
keep_logs
finish
