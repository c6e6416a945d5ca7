#!/usr/bin/env bash
# avatarctl's output, as people and scripts get it (issue 16, problems 1 and 7, and colour):
# for people whether stdout is a terminal or a pipe; data only when asked (--format
# json|yaml|ids, --json, -q); a result's bytes down a pipe ("runner download R shuffled |
# head -3" prints CSV); one meaning of -o; set-parameters' params object as --params-json;
# a short status and --verbose; tables fit the terminal with "…"; ISO 8601 times; jobs in the
# same order at every call; colour on a terminal only, never with NO_COLOR.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"
. "$(dirname "$0")/cli-fixtures.sh"

cli_start || { fail "avatard and avatar-sim start"; finish; exit $?; }
unset COLUMNS NO_COLOR
export TZ=UTC
cd "$TMP" || exit 1
cp "$IRIS" iris.csv

run_ctl avatarize iris.csv
check_eq "avatarize iris.csv succeeds" "0" "$RC"
[ "$RC" = 0 ] || printf '#   %s\n' "$ERR"
R=$("$AVATARCTL" -q runner list | head -n 1)
check "runner list -q prints the runner's id" is_uuid "$R"

# --- 1. for people, piped or not; data when asked ---------------------------------------------------
run_ctl runner list
check_match "runner list into a pipe: a table for people" "^RUNNER +NAME +STATE +RUN ID" "$OUT"
check_no_match "runner list into a pipe: no JSON" '"runners"' "$OUT"
tty_ctl runner list
check_match "runner list on a terminal: the same table" "RUNNER +NAME +STATE" "$OUT"
run_ctl --format json runner list
check_match "--format json: the daemon's result" "^\\{\"runners\":\\[\\{\"runner_id\":\"$R\"" "$OUT"
check_eq "--format json into a pipe: one line" "1" "$(count_lines "$OUT")"
run_ctl runner list --json
check_match "--json (after the command too): the same" "^\\{\"runners\":\\[" "$OUT"
run_ctl --format yaml runner list
check_match "--format yaml" "^runners:" "$OUT"
check_match "--format yaml: a runner" "^- runner_id: $R|^  - runner_id: $R|^- runner_id: \"$R\"" "$(sed 's/^  //' <<<"$OUT")"
run_ctl --format ids runner list
check_eq "--format ids: the runner ids" "$R" "$OUT"
run_ctl -q runner status iris
check_eq "-q: the id of what the command shows" "$R" "$OUT"
run_ctl --format ids jobs --last 5
check_eq "--format ids jobs: five job names" "5" "$(count_lines "$OUT")"
run_ctl --format csv status
check_eq "an unknown --format is a usage error" "2" "$RC"

# a result's bytes go down a pipe: runner download R shuffled | head -3 prints CSV
out=$("$AVATARCTL" runner download "$R" shuffled 2>"$TMP/dl.err" | head -n 3)
check_eq "runner download R shuffled | head -3: three lines" "3" "$(count_lines "$out")"
check_eq "... of CSV, the header first" "$(head -n 1 "$IRIS")" "$(head -n 1 <<<"$out")"
check_no_match "... never a JSON envelope" '"encoding"|"data"' "$out"
"$AVATARCTL" runner download iris shuffled >"$TMP/redirected.csv" 2>/dev/null
check_eq "into a redirected stdout: the whole file" "$(wc -l <"$IRIS")" "$(wc -l <"$TMP/redirected.csv")"
check "... the same bytes as the one avatarize wrote" cmp -s "$TMP/redirected.csv" iris-avatars/iris.shuffled-0.csv
run_ctl --format json runner download "$R" shuffled
check_match "--format json asks for the result object instead" '"encoding":"utf-8","data":"sepal_length' "$OUT"
tty_ctl runner download "$R" shuffled
check_match "on a terminal: the text" "sepal_length,sepal_width" "$OUT"

# -o: a file, - for stdout, a directory
run_ctl runner download "$R" shuffled -o a.csv
check "-o FILE writes the file" cmp -s a.csv iris-avatars/iris.shuffled-0.csv
"$AVATARCTL" runner download "$R" shuffled -o - >b.csv 2>/dev/null
check "-o - writes stdout" cmp -s b.csv a.csv
run_ctl runner download "$R" shuffled -o into/
check "-o DIR/ writes the file under the server's name" cmp -s into/iris.shuffled-0.csv a.csv
run_ctl runner download "$R" -o all
check_eq "-o DIR without RESULT: every result" "0" "$RC"
check "... the report among them" test -s all/report.pdf
check "... the projections too" test -s all/iris.projections.avatars-0.csv
run_ctl avatarize iris.csv --name iris-o -o out-o
check "avatarize -o DIR" test -s out-o/iris.shuffled-0.csv

# set-parameters: --json is the output format; the params object is --params-json
"$AVATARCTL" --json call manager.create_runner '{"set_name":"params"}' >/dev/null
"$AVATARCTL" runner add-table params iris iris.csv >/dev/null 2>&1
run_ctl runner set-parameters params iris --params-json '{"k": 7}' --json
check_eq "set-parameters --params-json OBJECT --json succeeds" "0" "$RC"
check_match "... and --json is JSON output" '"parameters":\{"k":7\}' "$OUT"
run_ctl runner set-parameters params iris --json '{"k": 8}'
check_eq "the old spelling --json OBJECT still works" "0" "$RC"
check_match "... with a note" "--json OBJECT is now --params-json OBJECT" "$ERR"
check_match "... and output for people" "Parameters of table iris:" "$OUT"

# --- 7. status short; tables fit the terminal; ISO 8601; a stable order -------------------------------
run_ctl status
check "status fits one screen (10 lines at most)" test "$(count_lines "$OUT")" -le 10
for label in "Version:" "Daemon: .*up " "Upstream: +$SIM_URL/api" "API key: +api-key" "Calls: +[0-9]+ served" \
             "Runners: +[0-9]+ held"; do
        check_match "status shows $label" "^$label" "$OUT"
done
run_ctl status --verbose
check "status --verbose shows the rest" test "$(count_lines "$OUT")" -gt 40
check_match "status --verbose: routes stay as they are" "GET /check_client:" "$OUT"
check_no_match "status --verbose: no key made into a garbled label" "Get /check client|^ *[0-9]{3}: .*:$" "$OUT"
check_match "status --verbose: the limits" "Max frame bytes: +[0-9]+" "$OUT"

export COLUMNS=60
run_ctl runner list
check "COLUMNS=60: no line wider than 60 columns" \
        test "$(sed 's/…/./g' <<<"$OUT" | awk '{ n = length($0); if (n > m) m = n } END { print m }')" -le 60
check_match "COLUMNS=60: cut cells end with …" "…" "$OUT"
unset COLUMNS
run_ctl runner list
check_no_match "into a pipe without COLUMNS: nothing cut" "…" "$OUT"
check_match "into a pipe without COLUMNS: the whole id" "$R" "$OUT"
TTY_SETUP="stty cols 70; "
tty_ctl runner list
TTY_SETUP=""
check "on a terminal of 70 columns: no line wider" \
        test "$(tr -d '\r' <<<"$OUT" | sed 's/\x1b\[[0-9;]*m//g; s/…/./g' | awk '{ n = length($0); if (n > m) m = n } END { print m }')" -le 70
check_match "on a terminal of 70 columns: cut with …" "…" "$OUT"

iso='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})'
run_ctl runner status "$R"
check_match "runner status: Created in ISO 8601" "^Created: +$iso$" "$OUT"
run_ctl jobs --last 10
check_match "jobs: CREATED in ISO 8601" "  $iso  " "$OUT"
all=$( { "$AVATARCTL" jobs --last 10; "$AVATARCTL" runner status "$R"; "$AVATARCTL" apikey list; \
        "$AVATARCTL" runs find iris; } 2>&1)
check_no_match "no time written another way (date, space, time)" "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}" "$all"
first=$("$AVATARCTL" jobs --last 10)
same_order=1
for _ in 1 2 3 4 5; do
        [ "$("$AVATARCTL" jobs --last 10)" = "$first" ] || same_order=0
done
check_eq "jobs --last 10: the same order at every call" "1" "$same_order"
created=$(awk 'NR > 1 { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]{4}-/) print $i }' <<<"$first")
check_eq "jobs: newest first" "$(sort -r <<<"$created")" "$created"

# --- colour: on a terminal, never with NO_COLOR or into a pipe --------------------------------------
esc=$(printf '\033\\[')
tty_ctl runner list
check_match "on a terminal: colour" "$esc" "$OUT"
NO_COLOR=1 tty_ctl runner list
check_no_match "NO_COLOR: no colour on a terminal" "$esc" "$OUT"
run_ctl runner list
check_no_match "into a pipe: no colour" "$esc" "$OUT"
run_ctl runner status nobody
check_no_match "errors into a pipe: no colour" "$esc" "$ERR"

finish
