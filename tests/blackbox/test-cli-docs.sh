#!/usr/bin/env bash
# The shell examples of the README ("Using it from a shell", "Talking to the socket") and of
# avatarctl(1)'s EXAMPLES, run as they are written (issue 16, problem 11) against avatar-sim
# with a slow job listing (800 ms a request, as a cold cache over a slow link): every command
# succeeds, and the socat example prints its answer, which socat's default half a second after
# the end of its input does not wait for. The one change made to them: the socket is the
# test's, not /run/avatard/avatard.sock.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"
. "$(dirname "$0")/cli-fixtures.sh"

README="$SOURCE_ROOT/README.md"
MAN="$SOURCE_ROOT/client/avatarctl.1"
SLOW_MS=800

# slow_start: the simulator and the daemon, with every request under /api/jobs slowed.
slow_start() {
        cli_start || return 1
        sim_fault "{\"path\":\"/api/jobs\",\"latency_ms\":$SLOW_MS}"
}

# readme_blocks LANG SECTION...: the ```LANG blocks of those sections of the README.
readme_blocks() {
        local lang=$1
        shift
        awk -v lang="$lang" -v sections="$(printf '%s\n' "$@")" '
                BEGIN { n = split(sections, want, "\n") }
                /^## / { on = 0; for (i = 1; i <= n; i++) if ($0 == "## " want[i]) on = 1; next }
                on && $0 == "```" lang { code = 1; next }
                on && code && $0 == "```" { code = 0; next }
                on && code { print }' "$README"
}

# man_examples: the commands ("$ " lines) of the EXAMPLES section of avatarctl(1), the roff
# escapes taken out.
man_examples() {
        sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$MAN" | awk '/^\.EX/ { on = 1; next } /^\.EE/ { on = 0 } on' |
                sed -n 's/^\$ //p' | sed 's/\\-/-/g; s/\\e/\\/g; s/\\(aq/'"'"'/g; s/\\&//g'
}

# run_line DIR LINE: one line of an example, in DIR, with the variables the lines before set
# ($id); its output in $TMP/line.out and line.err. Returns its exit status (a pipeline's
# fails when any of its commands does).
run_line() {
        {
                printf 'set -o pipefail\ncd %q\n' "$1"
                [ -f "$TMP/vars.sh" ] && cat "$TMP/vars.sh"
                printf '%s\n' "$2"
                printf 'rc=$?\ndeclare -p id >%q 2>/dev/null\nexit $rc\n' "$TMP/vars.sh"
        } >"$TMP/line.sh"
        bash "$TMP/line.sh" >"$TMP/line.out" 2>"$TMP/line.err"
}

slow_start || { fail "avatard and avatar-sim start"; finish; exit $?; }
mkdir -p "$TMP/bin" "$TMP/readme" "$TMP/man"
ln -s "$AVATARCTL" "$TMP/bin/avatarctl"
export PATH="$TMP/bin:$PATH" NO_COLOR=1

# The slowness is there: a call that lists jobs takes longer than socat's default wait.
t0=$(test_now_ms)
"$AVATARCTL" jobs --last 3 >/dev/null
t1=$(test_now_ms)
at_least_ms "a job listing takes at least $SLOW_MS ms" "$t0" "$t1" "$SLOW_MS"
old=$(echo '{"jsonrpc":"2.0","method":"manager.get_last_jobs","params":{"count":3},"id":1}' |
        socat - "UNIX-CONNECT:$SOCK")
check_eq "socat without -t prints nothing for a call slower than half a second" "" "$old"

# --- the README ------------------------------------------------------------------------------------
readme_blocks sh "Using it from a shell" "Talking to the socket" | sed "s|/run/avatard/avatard.sock|$SOCK|g" \
        >"$TMP/readme.sh"
readme_blocks python "Talking to the socket" | sed "s|/run/avatard/avatard.sock|$SOCK|g" >"$TMP/readme.py"
check "the README's shell sections have examples" test "$(count_lines "$(cat "$TMP/readme.sh")")" -gt 30
check "... among them socat with -t" grep -q 'socat -t [0-9]* - UNIX-CONNECT:' "$TMP/readme.sh"
cd "$TMP/readme" || exit 1
make_patients patients.csv 40
make_visits visits.csv 80 40
printf 'id,x\n1,2\n3,4\n' >t.csv
# Each line alone, so that a failure names it (the README's commands are one line each).
n=0
failed=""
while IFS= read -r line; do
        [ -n "$line" ] || continue
        n=$((n + 1))
        if ! run_line "$TMP/readme" "$line"; then
                failed="$failed"$'\n'"$line: $(tail -n 3 "$TMP/line.err")"
        fi
        if [[ $line == *socat* ]]; then
                check_match "the README's socat example prints the answer" '^\{"jsonrpc":"2.0","result":\{"jobs":' \
                        "$(cat "$TMP/line.out")"
        fi
        if [[ $line == *"| head -3"* ]]; then
                check_eq "the README's runner download ... | head -3 prints three lines of CSV" \
                        "$(head -n 1 visits.csv)" "$(head -n 1 "$TMP/line.out")"
        fi
done <"$TMP/readme.sh"
check "the README's examples ran ($n commands)" test "$n" -gt 30
check_eq "every README example succeeds as written" "" "$failed"
check "avatarize wrote the patients' avatars where the README says" test -s patients-avatars/patients.shuffled-0.csv
check "avatarize --resume wrote the visits' avatars" test -s visits-avatars/visits.shuffled-0.csv
check "the step-by-step download" test -s patients.avatars.csv
check "runner download -o DIR: every result" test -s hospital-results/report.pdf
out=$(python3 "$TMP/readme.py" 2>&1)
check_match "the README's Python example prints the daemon's version" '^[0-9]+\.[0-9]+\.[0-9]+$' "$out"

# --- avatarctl(1)'s EXAMPLES, on a fresh daemon and simulator -------------------------------------------
cd "$TMP" || exit 1
stop_daemon
stop_sim
rm -rf "$STATE" "$TMP/storage"
mkdir -p "$STATE"
slow_start || fail "avatard and avatar-sim start again"
man_examples >"$TMP/man.sh"
check "avatarctl(1) has examples" test "$(count_lines "$(cat "$TMP/man.sh")")" -gt 20
cd "$TMP/man" || exit 1
cp "$IRIS" iris.csv
make_patients patients.csv 40
rm -f "$TMP/vars.sh"
n=0
failed=""
while IFS= read -r line; do
        [ -n "$line" ] || continue
        n=$((n + 1))
        if ! run_line "$TMP/man" "$line"; then
                failed="$failed"$'\n'"$line: $(tail -n 3 "$TMP/line.err")"
        fi
done <"$TMP/man.sh"
check "avatarctl(1)'s examples ran ($n commands)" test "$n" -gt 20
check_eq "every avatarctl(1) example succeeds as written" "" "$failed"
check "the man page's avatarize wrote iris-avatars" test -s iris-avatars/iris.shuffled-0.csv
check "its --resume wrote patients-avatars" test -s patients-avatars/patients.shuffled-0.csv

finish
