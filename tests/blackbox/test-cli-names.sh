#!/usr/bin/env bash
# How a person names things and finds their way (issue 16, problems 4, 5 and 10): runners,
# runs and jobs by full id, unique prefix or display name, an ambiguous name listing its
# candidates once; group help, help of a group, did-you-mean for commands and options, and
# the man page naming every option the help gives; deletions that ask first (and refuse
# without a terminal unless --yes), with a reason per item that failed and the documented
# exit code.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"
. "$(dirname "$0")/cli-fixtures.sh"

cli_start || { fail "avatard and avatar-sim start"; finish; exit $?; }
export NO_COLOR=1 TZ=UTC
cd "$TMP" || exit 1
cp "$IRIS" iris.csv

# --- 4. names and prefixes --------------------------------------------------------------------------
A=$("$AVATARCTL" -q runner create alpha)
"$AVATARCTL" runner create beta >/dev/null
check "runner create -q prints the id" is_uuid "$A"
run_ctl runner status "${A:0:8}"
check_eq "a runner by a unique prefix of its id" "0" "$RC"
check_match "... is that runner" "^Runner: +$A$" "$OUT"
run_ctl runner status "$(tr 'a-f' 'A-F' <<<"${A:0:8}")"
check_eq "... in capitals too" "0" "$RC"
run_ctl runner status alpha
check_match "a runner by its display name" "^Runner: +$A$" "$OUT"
run_ctl runner add-table alpha iris iris.csv
check_eq "every runner command takes the name (add-table)" "0" "$RC"
A2=$("$AVATARCTL" -q runner create alpha)
run_ctl runner status alpha
check_eq "a display name two runners have: exit 9" "9" "$RC"
check_match "... says so" "avatarctl: runner status: 'alpha' names 2 runners; give the id of one \\(ambiguous\\):" "$ERR"
check_eq "... lists the first candidate once" "1" "$(grep -c "$A" <<<"$ERR")"
check_eq "... and the second once" "1" "$(grep -c "$A2" <<<"$ERR")"
run_ctl runner status zzzz
check_eq "a name nothing has: exit 6" "6" "$RC"
check_match "... with where to look" "hint: see your runners with 'avatarctl runner list'" "$ERR"

run_ctl avatarize iris.csv --name gamma
check_eq "avatarize gamma" "0" "$RC"
S=$(json_str set_name "$("$AVATARCTL" --json runner status gamma)")
check "its run has an id" is_uuid "$S"
run_ctl -q jobs --set gamma
check_eq "jobs --set by the run's display name: its five jobs" "5" "$(count_lines "$OUT")"
run_ctl -q jobs --set "${S:0:8}"
check_eq "jobs --set by a prefix of the run's id: the same" "5" "$(count_lines "$OUT")"
J=$(head -n 1 <<<"$OUT")
run_ctl job "${J:0:12}"
check_eq "a job by a unique prefix of its name" "0" "$RC"
check_match "... is that job" "^Name: +$J$" "$OUT"
run_ctl watch gamma --wait-timeout 30
check_eq "watch a run by its display name" "0" "$RC"
run_ctl watch "${S:0:8}" --wait-timeout 30
check_eq "watch a run by a prefix of its id" "0" "$RC"
run_ctl watch --runner gamma --wait-timeout 30
check_eq "watch --runner by the runner's display name" "0" "$RC"
run_ctl runs load "${S:0:8}"
check_eq "runs load by a prefix of the run's id" "0" "$RC"
check_match "... loads that run" "^Run id: +$S$" "$OUT"

# --- 5. help, groups, did-you-mean ------------------------------------------------------------------
run_ctl runner --help
check_eq "avatarctl runner --help: exit 0" "0" "$RC"
check_match "... the group's commands" "^  status RUNNER \\[--refresh\\] +Show a runner" "$OUT"
check_match "... every one of them" "^  rm RUNNER\\.\\.\\. \\[--yes\\]" "$OUT"
group_help=$OUT
run_ctl help runner
check_eq "avatarctl help runner: the same" "$group_help" "$OUT"
run_ctl runner
check_eq "a group without a command: exit 2" "2" "$RC"
check_match "... lists its commands" "'runner' needs a subcommand: create" "$ERR"
run_ctl runner stauts alpha
check_eq "a mistyped subcommand: exit 2" "2" "$RC"
check_match "... did you mean" "unknown command 'runner stauts'; did you mean 'runner status'\\?" "$ERR"
run_ctl stauts
check_match "a mistyped command: did you mean" "unknown command 'stauts'; did you mean 'status'\\?" "$ERR"
run_ctl runner list --jsno
check_match "a mistyped option: did you mean" "runner list: unknown option '--jsno'; did you mean '--json'\\?" "$ERR"
run_ctl avatarize iris.csv --wait-timout 5
check_match "a mistyped command option: did you mean" "unknown option '--wait-timout'; did you mean '--wait-timeout'\\?" "$ERR"
run_ctl runner wait gamma --timeout 30
check_eq "--timeout means the same after runner wait: the wait's bound" "0" "$RC"

# The man page names, for every command, every option its help gives; and the global ones.
MAN="$SOURCE_ROOT/client/avatarctl.1"
# the commands, as --help lists them: the leading lowercase words of each entry
commands=$("$AVATARCTL" --help | sed -n '/^Commands:/,/^$/p' | grep -E '^  [a-z]' |
        awk '{ c = ""; for (i = 1; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++) c = c (c == "" ? "" : " ") $i; print c }')
check "the commands are listed" test "$(count_lines "$commands")" -gt 30
# the man page's text of each command: from its entry (".TP" then ".B..." naming it) to the
# next command's entry, with the escapes of roff taken out
sections=$(awk -v names="$commands" '
        BEGIN { n = split(names, list, "\n") }
        prev == ".TP" && /^\.B[RI]? / {
                line = $0; sub(/^\.B[RI]? /, "", line); gsub(/"/, "", line); gsub(/\\-/, "-", line)
                best = ""
                for (i = 1; i <= n; i++)
                        if (list[i] != "" && (line == list[i] || index(line, list[i] " ") == 1) && length(list[i]) > length(best))
                                best = list[i]
                if (best != "") cur = best
        }
        { prev = $0; t = $0; gsub(/\\-/, "-", t); gsub(/\\f[BIRP]/, "", t); if (cur != "") print cur "\t" t }
' "$MAN")
missing=""
while IFS= read -r c; do
        [ -n "$c" ] || continue
        opts=$("$AVATARCTL" help $c | sed -n '/^Options:/,/^$/p' | grep -oE -- '--[a-z][a-z-]+' | sort -u)
        text=$(awk -F '\t' -v c="$c" '$1 == c { print $2 }' <<<"$sections")
        [ -n "$text" ] || { missing="$missing [$c: no entry]"; continue; }
        for o in $opts; do
                grep -qF -- "$o" <<<"$text" || missing="$missing [$c $o]"
        done
done <<<"$commands"
check_eq "every option of every command's help is in its entry of the man page" "" "$missing"
global_help=$("$AVATARCTL" --help | sed -n '/^Options:/,/^$/p' | grep -oE -- '--[a-z][a-z-]+' | sort -u)
global_man=$(sed -n '/^\.SH OPTIONS/,/^\.SH COMMANDS/p' "$MAN" | sed 's/\\-/-/g' | grep -oE -- '--[a-z][a-z-]+' |
        grep -vxF -- '--wait-timeout' | sort -u)
check_eq "the global options: the same in the help and the man page" "$global_help" "$global_man"

# --- 10. deletions ask first, and say why each item failed -------------------------------------------
deletes=$(sim_count "POST /api/jobs/bulk-delete")
run_ctl runs delete gamma
check_eq "runs delete without --yes and no terminal: refused (exit 2)" "2" "$RC"
check_match "... saying why and what to add" "runs delete: Delete every job of the run named 'gamma': not without a confirmation, and stdin is not a terminal to ask on: add --yes to go on" "$ERR"
check_eq "... nothing deleted" "$deletes" "$(sim_count "POST /api/jobs/bulk-delete")"

# tty_answer ANSWER ARGS...: avatarctl on a terminal, typing ANSWER once it asks; $OUT, $RC.
tty_answer() {
        local answer=$1 pid
        shift
        rm -f "$TMP/answer"
        mkfifo "$TMP/answer"
        script -qec "$(printf '%q ' "$AVATARCTL" "$@")" /dev/null <"$TMP/answer" >"$TMP/tty.out" 2>&1 &
        pid=$!
        exec 9>"$TMP/answer"
        wait_for_output 20 "$TMP/tty.out" '\[y/N\]' "$pid" || echo "# the question did not show"
        # in a subshell: when avatarctl did not ask, nobody reads, and SIGPIPE ends only it
        (printf '%s\n' "$answer" >&9) 2>/dev/null
        exec 9>&-
        wait "$pid"
        RC=$?
        OUT=$(tr -d '\r' <"$TMP/tty.out")
}
tty_answer n runs delete gamma
check_eq "on a terminal, answered n: exit 1" "1" "$RC"
check_match "... it asked" "Delete every job of the run named 'gamma'\\? \\[y/N\\]" "$OUT"
check_match "... nothing was deleted" "nothing was deleted" "$OUT"
check_eq "... nothing went to the server" "$deletes" "$(sim_count "POST /api/jobs/bulk-delete")"
tty_answer y runs delete gamma
check_eq "on a terminal, answered y: deleted" "0" "$RC"
check_match "... the summary" "Deleted 5 jobs, failed 0\\." "$OUT"

run_ctl avatarize iris.csv --name delta --jobs standard
D=$("$AVATARCTL" -q jobs --set delta)
run_ctl jobs delete "$D" no-such-job-of-bb
check_eq "jobs delete of two names without --yes: refused" "2" "$RC"
run_ctl jobs delete "$D" no-such-job-of-bb --yes
check_eq "a deletion where one name is unknown: exit 6 (not found), the documented code" "6" "$RC"
check_match "... how many went" "^Deleted 1 job, failed 1\\.$" "$OUT"
check_match "... the reason of the one that failed" "^  no-such-job-of-bb  the server did not delete it: no such job, or not yours \\(not_found\\)$" "$OUT"
run_ctl --json jobs delete no-such-job-of-bb
check_eq "--json: the same exit code" "6" "$RC"
check_match "--json: the daemon's result" '"failed_jobs":\["no-such-job-of-bb"\]' "$OUT"

finish
