#!/usr/bin/env bash
# Black-box tests of the runner methods against avatar-sim: an avatarization end to end
# through avatarctl and through a raw socket client (upload by descriptor, the five jobs and
# their depends_on chain, progress notifications, downloads into descriptors and inline), a
# multi-table run with a link, the YAML round trip, reloading a run by id and by name,
# the parameter rules, a job failing upstream, the advice flow and a re-run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

start_sim --api-key "$SIM_KEY" --job-step-ms 100 || { fail "avatar-sim starts"; finish; exit $?; }
runner_conf >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

IRIS_BYTES=$(stat -c %s "$IRIS")
IRIS_ROWS=$(($(wc -l <"$IRIS") - 1))

# --- end to end through avatarctl call ---------------------------------------------------------
ctl manager.create_runner '{"set_name":"iris_k5"}'
check_eq "create_runner succeeds" "0" "$CTL_RC"
R1=$(runner_id_of "$OUT")
check "create_runner gives the runner a UUID" is_uuid "$R1"
check_match "a new runner is configuring, owned by the caller, without a set" \
        "\"display_name\":\"iris_k5\",\"owner\":$(id -u),\"state\":\"configuring\",\"set_name\":null" "$OUT"

ctl runner.add_table "{\"runner_id\":\"$R1\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS"
check_eq "add_table with the table passed as a descriptor succeeds" "0" "$CTL_RC"
check_match "add_table stores it as iris.csv in a folder of the runner's own, with its size" \
        "\"upload\":\\{\"file\":\"$R1/[0-9a-f]{32}/iris.csv\",\"bytes\":$IRIS_BYTES,\"storage_url\":\"s3://[0-9a-f-]+/30d/$R1/[0-9a-f]{32}/iris.csv\"" "$OUT"
check_match "add_table lists the runner's tables" '"tables":\["iris"\]' "$OUT"
stored=$(find "$TMP/storage" -path "*/30d/$R1/*/iris.csv" -type f | head -n 1)
check "the simulator stored the table byte for byte" cmp "$IRIS" "$stored"
check_eq "the upload asked GET /upload_url once" "1" "$(sim_count "GET /api/upload_url")"
check_eq "the upload asked GET /access once" "1" "$(sim_count "GET /api/access")"
check_eq "the upload was one PutObject" "1" "$(sim_count "PUT /storage/{bucket}/{key}")"
check_match "the /access envelope names the object" "\"query\":\"url=[^\"]*%2F30d%2F$R1%2F[0-9a-f]{32}%2Firis\\.csv\"" \
        "$(sim_requests "GET /api/access")"

ctl runner.set_parameters "{\"runner_id\":\"$R1\",\"table_name\":\"iris\",\"k\":5}"
check_eq "set_parameters k=5 succeeds" "0" "$CTL_RC"
check_match "set_parameters answers the table's parameters and no warning" \
        '"parameters":\{"k":5\},"warnings":\[\]' "$OUT"

mark=$(wc -l <"$SIM_REQUESTS")
ctl runner.run "{\"runner_id\":\"$R1\"}"
run1=$OUT
check_eq "run succeeds" "0" "$CTL_RC"
S1=$(json_str set_name "$run1")
check "run answers the new set's UUID" is_uuid "$S1"
check_match "the first run replaced nothing" '"replaced":false,"previous_set_name":null' "$run1"
check_eq "run creates the five default jobs in the contract's order" \
        "standard signal_metrics privacy_metrics report report_pia" \
        "$(json_strs parameters_name "$run1" | tr '\n' ' ' | sed 's/ $//')"
upstream=$(tail -n +$((mark + 1)) "$SIM_REQUESTS" | grep -o '"route":"\(PUT /api/resources/{display_name}\|POST /api/jobs\)"' |
        sed 's/"route":"//; s/"$//' | tr '\n' ',')
check_eq "upstream: PUT /api/resources/{display_name}, then five POST /api/jobs" \
        "PUT /api/resources/{display_name},POST /api/jobs,POST /api/jobs,POST /api/jobs,POST /api/jobs,POST /api/jobs," \
        "$upstream"
check_match "the set is named by the display name" '"method":"PUT","path":"/api/resources/iris_k5"' \
        "$(sim_requests "PUT /api/resources/{display_name}")"
STD1=$(job_field "$run1" standard name)
check "each job has the server's name" is_uuid "$STD1"

# the set the simulator stored is the runner's YAML
ctl runner.export_yaml "{\"runner_id\":\"$R1\"}"
json_raw_str yaml "$OUT" | json_unescape >"$TMP/r1.yaml"
sim_api GET "/resources/$S1" >"$TMP/r1-stored.yaml"
check "the YAML stored upstream is the one export_yaml shows" diff -B "$TMP/r1.yaml" "$TMP/r1-stored.yaml"
check_match "the YAML holds k: 5 for iris" '^      k: 5$' "$(cat "$TMP/r1.yaml")"

wait_runner "$R1"
check_eq "wait succeeds" "0" "$CTL_RC"
check_match "wait ends done, not timed out" '"done":true,"timed_out":false' "$OUT"
check_eq "wait: all five jobs finished" "finished finished finished finished finished" \
        "$(json_strs status "$OUT" | tr '\n' ' ' | sed 's/ $//')"
ctl runner.get_status "{\"runner_id\":\"$R1\"}"
check_match "get_status: the runner is finished" '"state":"finished"' "$OUT"

# shuffled into a descriptor: the simulator's file, byte for byte
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"shuffled\",\"table\":\"iris\",\"fd\":{\"fd\":0}}" \
        --out "$TMP/shuffled.csv"
check_eq "download shuffled into a descriptor succeeds" "0" "$CTL_RC"
check_match "download answers the file name and size" \
        "\"result\":\"shuffled\",\"table\":\"iris\",\"file_name\":\"iris.shuffled-0.csv\",\"bytes\":$IRIS_BYTES" "$OUT"
check_eq "shuffled has the input's header" "$(head -n 1 "$IRIS")" "$(head -n 1 "$TMP/shuffled.csv")"
check_eq "shuffled has the input's row count" "$IRIS_ROWS" "$(($(wc -l <"$TMP/shuffled.csv") - 1))"
check "shuffled is byte-exact against the simulator's object" \
        cmp "$TMP/shuffled.csv" "$(stored_object "$S1" "$STD1" iris.shuffled-0.csv)"
check_eq "shuffled holds the input rows (the simulator reverses them)" \
        "$(tail -n +2 "$IRIS" | tac | md5sum)" "$(tail -n +2 "$TMP/shuffled.csv" | md5sum)"
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}}" --out "$TMP/shuffled2.csv"
check_eq "with one table, download needs no table name" "0" "$CTL_RC"
check "and gives the same file" cmp "$TMP/shuffled.csv" "$TMP/shuffled2.csv"

# metrics inline
for m in privacy_metrics signal_metrics; do
        ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"$m\",\"table\":\"iris\"}"
        check_eq "download $m inline succeeds" "0" "$CTL_RC"
        check_match "$m comes inline as utf-8 text" '"encoding":"utf-8","data":"' "$OUT"
        json_raw_str data "$OUT" | json_unescape >"$TMP/$m.json"
        check_match "$m JSON carries metadata.table_name iris" '"table_name": ?"iris"' "$(tr -d ' \n' <"$TMP/$m.json")"
        check_match "$m JSON carries metadata.computation_type" '"computation_type"' "$(cat "$TMP/$m.json")"
done

# reports: PDF and docx into descriptors, byte-exact
REP1=$(job_field "$run1" report name)
PIA1=$(job_field "$run1" report_pia name)
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"report\",\"fd\":{\"fd\":0}}" --out "$TMP/report.pdf"
check_eq "download report succeeds" "0" "$CTL_RC"
check_match "the report is report.pdf" '"file_name":"report.pdf"' "$OUT"
check_eq "the report is a PDF (starts with %PDF-)" "%PDF-" "$(head -c 5 "$TMP/report.pdf")"
check_match "the PDF ends with %%EOF" '%%EOF' "$(tail -c 16 "$TMP/report.pdf")"
check "the PDF is byte-exact against the simulator's object" \
        cmp "$TMP/report.pdf" "$(stored_object "$S1" "$REP1" report.pdf)"
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"report_pia\",\"table\":\"iris\",\"fd\":{\"fd\":0}}" \
        --out "$TMP/pia.docx"
check_eq "download report_pia succeeds" "0" "$CTL_RC"
check_match "the PIA report is the table's docx" '"file_name":"iris.report.pia.docx"' "$OUT"
check_eq "the docx is a zip (PK\\3\\4)" "504b0304" "$(head -c 4 "$TMP/pia.docx" | od -An -tx1 | tr -d ' \n')"
check "the docx is byte-exact against the simulator's object" \
        cmp "$TMP/pia.docx" "$(stored_object "$S1" "$PIA1" iris.report.pia.docx)"

# inline: text as utf-8, binary as base64
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"run_metadata\"}"
check_eq "download run_metadata inline succeeds" "0" "$CTL_RC"
check_match "a small text result comes inline as utf-8" '"file_name":"run_metadata.avatarize.json".*"encoding":"utf-8"' "$OUT"
check_match "its text is the standard job's metadata" "\\\\\"job_name\\\\\":\\\\\"$STD1\\\\\"" "$(tr -d ' ' <<<"$OUT")"
# text that is not UTF-8 (an overlong form, then a surrogate) cannot be a JSON string: base64
meta=$(stored_object "$S1" "$STD1" run_metadata.avatarize.json)
cp "$meta" "$TMP/run_metadata.saved"
for bad in 'caf\xc0\xa9' 'x\xed\xa0\x80y'; do
        printf '%b' "$bad" >"$meta"
        ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"run_metadata\"}"
        check_match "a text result that is not UTF-8 ($bad) comes inline as base64" \
                "\"encoding\":\"base64\",\"data\":\"$(printf '%b' "$bad" | base64)\"" "$OUT"
done
printf 'caf\xc3\xa9 \xf0\x9f\x90\x99\x01' >"$meta"
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"run_metadata\"}"
check_match "UTF-8 text with a control character comes inline as utf-8" \
        '"encoding":"utf-8","data":"café 🐙\\u0001"' "$OUT"
cp "$TMP/run_metadata.saved" "$meta"
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"report\"}"
check_eq "download report inline succeeds" "0" "$CTL_RC"
check_match "a binary result comes inline as base64" '"encoding":"base64","data":"JVBERi0' "$OUT"
json_str data "$OUT" | base64 -d >"$TMP/report-inline.pdf" 2>/dev/null
check "the base64 data decodes to the PDF" cmp "$TMP/report.pdf" "$TMP/report-inline.pdf"
check_match "bytes counts the decoded size" "\"bytes\":$(stat -c %s "$TMP/report.pdf")," "$OUT"

ctl runner.list_results "{\"runner_id\":\"$R1\"}"
check_eq "list_results succeeds" "0" "$CTL_RC"
check_match "list_results names the shuffled file and its table" \
        '\{"result":"shuffled","file_name":"iris.shuffled-0.csv","table":"iris"\}' "$OUT"
check_match "list_results: the basic report belongs to no table" \
        '\{"result":"report","file_name":"report.pdf","table":null\}' "$OUT"
check_match "list_results: run metadata belongs to no table" \
        '\{"result":"run_metadata","file_name":"run_metadata.avatarize.json","table":null\}' "$OUT"
check_match "list_results: figures metadata belongs to no table" \
        '\{"result":"figures_metadata","file_name":"figures_metadata.json","table":null\}' "$OUT"
check_match "list_results: the PIA report belongs to its table" \
        '\{"result":"report","file_name":"iris.report.pia.docx","table":"iris"\}' "$OUT"

# --- end to end through a raw socket client, with notifications ------------------------------------
# the job clock stands still: the test moves the jobs once the wait is in place, so that the
# wait sees them pending first and finished later, however fast the daemon polls
sim_control clock '{"job_step_ms":0}' >/dev/null
out=$(pcall manager.create_runner '{"set_name":"iris_raw"}')
R2=$(runner_id_of "$out")
check "raw: create_runner answers a runner" is_uuid "$R2"
out=$(pcall -f "$IRIS" runner.add_table "{\"runner_id\":\"$R2\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}")
reply=$(reply_of "$out")
check_match "raw: add_table with SCM_RIGHTS succeeds" "\"result\":\\{\"runner_id\":\"$R2\",\"table_name\":\"iris\",\"upload\":\\{\"file\":\"$R2/[0-9a-f]{32}/iris.csv\",\"bytes\":$IRIS_BYTES" "$reply"
sub=$(json_str subscription "$reply")
notes=$(notes_of "$out" runner.progress)
check_match "raw: upload progress notifications name the bytes and the total" \
        "\"event\":\"upload\",\"table_name\":\"iris\",\"file\":\"$R2/[0-9a-f]{32}/iris.csv\",\"bytes\":$IRIS_BYTES,\"total\":$IRIS_BYTES,\"subscription\":\"$sub\",\"seq\":1" "$notes"
out=$(pcall runner.set_parameters "{\"runner_id\":\"$R2\",\"table_name\":\"iris\",\"k\":5}")
check_match "raw: set_parameters" '"parameters":\{"k":5\}' "$out"
out=$(pcall runner.run "{\"runner_id\":\"$R2\"}")
check_match "raw: run" '"replaced":false' "$out"
S2=$(json_str set_name "$out")
# after three steps the standard job is pending with some progress, the others are created
call_in_two_strides "$TMP/raw-wait.out" '"status":"pending","progress":0\.[0-9]' runner.wait "{\"runner_id\":\"$R2\"}"
out=$(cat "$TMP/raw-wait.out")
reply=$(reply_of "$out")
notes=$(notes_of "$out" runner.progress)
check_match "raw: wait ends done" '"result":\{"runner_id":"[^"]*","done":true,"timed_out":false' "$reply"
sub=$(json_str subscription "$reply")
check_match "raw: the wait's reply names its subscription" '^s[0-9]+$' "$sub"
n=$(count_lines "$notes")
check_match "raw: runner.progress notifications arrived during the wait (several polls)" '^([2-9]|[1-9][0-9]+)$' "$n"
check_eq "raw: every notification carries the wait's subscription" "$n" \
        "$(grep -c "\"subscription\":\"$sub\"" <<<"$notes")"
check "raw: seq starts at 1 and increases by one" seqs_consecutive "$notes"
check_eq "raw: the notifications precede the reply" "$n" "$(($(count_lines "$out") - 1))"
check_match "raw: notifications report jobs moving (pending with progress)" '"status":"pending","progress":0\.[0-9]+' "$notes"
check_match "raw: the last notification reports finished jobs" '"status":"finished","progress":1' "$(tail -n 1 <<<"$notes")"
check_match "raw: notifications are runner.progress of event jobs" \
        "^\\{\"jsonrpc\":\"2.0\",\"method\":\"runner.progress\",\"params\":\\{\"runner_id\":\"$R2\",\"event\":\"jobs\"" \
        "$(head -n 1 <<<"$notes")"
out=$(pcall -o "$TMP/raw-shuffled.csv" runner.download \
        "{\"runner_id\":\"$R2\",\"result\":\"shuffled\",\"table\":\"iris\",\"fd\":{\"fd\":0}}")
check_match "raw: download into a passed descriptor" "\"bytes\":$IRIS_BYTES" "$(reply_of "$out")"
STD2=$(json_str name "$(sim_api GET "/jobs?set_name=$S2&kind=standard")")
check "raw: the downloaded file is byte-exact" cmp "$TMP/raw-shuffled.csv" "$(stored_object "$S2" "$STD2" iris.shuffled-0.csv)"
out=$(pcall runner.download "{\"runner_id\":\"$R2\",\"result\":\"report\",\"fd\":{\"fd\":0}}")
check_match "raw: fd 0 named but no descriptor sent: invalid params" '"code":-32602' "$(reply_of "$out")"
sim_control clock '{"job_step_ms":100}' >/dev/null

# --- multi-table with a link and a foreign key ---------------------------------------------------
printf 'patient_id,age,sex\n1,34,F\n2,51,M\n3,27,F\n4,62,M\n' >"$TMP/patients.csv"
printf 'visit_id,patient_id,weight\n10,1,61.5\n11,1,62.0\n12,2,80.1\n13,3,55.0\n14,4,90.2\n15,4,89.9\n' >"$TMP/visits.csv"
ctl manager.create_runner '{"set_name":"multi"}'
RM=$(runner_id_of "$OUT")
ctl runner.add_table "{\"runner_id\":\"$RM\",\"table_name\":\"patients\",\"data\":{\"fd\":0},\"primary_key\":\"patient_id\",\"individual_level\":true,\"types\":{\"patient_id\":\"int\",\"age\":\"int\",\"sex\":\"category\"}}" \
        --file "$TMP/patients.csv"
check_eq "multi: add the parent table" "0" "$CTL_RC"
ctl runner.add_table "{\"runner_id\":\"$RM\",\"table_name\":\"visits\",\"data\":{\"fd\":0},\"primary_key\":\"visit_id\",\"foreign_keys\":[\"patient_id\"],\"individual_level\":false,\"types\":{\"visit_id\":\"int\",\"patient_id\":\"int\",\"weight\":\"float\"}}" \
        --file "$TMP/visits.csv"
check_eq "multi: add the child table with a foreign key" "0" "$CTL_RC"
check_match "multi: both tables" '"tables":\["patients","visits"\]' "$OUT"
ctl runner.add_link "{\"runner_id\":\"$RM\",\"parent_table_name\":\"patients\",\"parent_field\":\"patient_id\",\"child_table_name\":\"visits\",\"child_field\":\"patient_id\",\"method\":\"linear_sum_assignment\"}"
check_eq "multi: add_link succeeds" "0" "$CTL_RC"
ctl runner.add_link "{\"runner_id\":\"$RM\",\"parent_table_name\":\"patients\",\"parent_field\":\"patient_id\",\"child_table_name\":\"nope\",\"child_field\":\"patient_id\"}"
check_eq "multi: a link to an unknown table is invalid params" "2" "$CTL_RC"
for t in patients visits; do
        ctl runner.set_parameters "{\"runner_id\":\"$RM\",\"table_name\":\"$t\",\"k\":3}"
done
ctl runner.export_yaml "{\"runner_id\":\"$RM\"}"
json_raw_str yaml "$OUT" | json_unescape >"$TMP/multi.yaml"
schema=$(sed -n '/^kind: AvatarSchema$/,/^---$/p' "$TMP/multi.yaml" | sed -n '1,/^---$/p')
check_substr "multi YAML: the parent table's link" \
        "    links:
    - field: patient_id
      to:
        table: visits
        field: patient_id
      method: linear_sum_assignment" "$schema"
check_substr "multi YAML: the parent's primary key column" "    - field: patient_id
      type: int
      primary_key: true" "$schema"
check_substr "multi YAML: the child's foreign key is an identifier column" "    - field: patient_id
      type: int
      identifier: true" "$schema"
check_substr "multi YAML: typed columns" "    - field: weight
      type: float" "$schema"
check_contains "multi YAML: individual_level of each table" "    individual_level: false" "$schema"
check_substr "multi YAML: parameters for both tables" "    patients:
      k: 3
    visits:
      k: 3" "$(cat "$TMP/multi.yaml")"
ctl runner.run "{\"runner_id\":\"$RM\"}"
check_eq "multi: run succeeds" "0" "$CTL_RC"
wait_runner "$RM"
check_match "multi: wait ends done" '"done":true' "$OUT"
ctl runner.download "{\"runner_id\":\"$RM\",\"result\":\"shuffled\"}"
check_eq "multi: shuffled without a table is ambiguous (exit 9)" "9" "$CTL_RC"
check_match "multi: the error lists the tables" 'patients' "$OUT"
ctl runner.download "{\"runner_id\":\"$RM\",\"result\":\"shuffled\",\"table\":\"visits\",\"fd\":{\"fd\":0}}" --out "$TMP/visits-avatars.csv"
check_eq "multi: shuffled of the child table" "0" "$CTL_RC"
check_eq "multi: the child table's avatars have its header and rows" "$(head -n 1 "$TMP/visits.csv") 6" \
        "$(head -n 1 "$TMP/visits-avatars.csv") $(($(wc -l <"$TMP/visits-avatars.csv") - 1))"
ctl runner.list_results "{\"runner_id\":\"$RM\"}"
check_match "multi: the metrics summary belongs to no table" '"file_name":"privacy_metrics_summary.json","table":null' "$OUT"

# --- YAML round trip ---------------------------------------------------------------------------
yaml_esc=$(json_raw_str yaml "$(ctl runner.export_yaml "{\"runner_id\":\"$R1\"}"; printf '%s' "$OUT")")
ctl manager.create_runner_from_yaml "{\"set_name\":\"iris_k5\",\"yaml\":\"$yaml_esc\"}"
check_eq "create_runner_from_yaml with inline YAML succeeds" "0" "$CTL_RC"
check_match "its display name gets -v1" '"display_name":"iris_k5-v1"' "$OUT"
check_match "it knows the tables of the YAML" '"tables":\["iris"\]' "$OUT"
RY=$(runner_id_of "$OUT")
ctl runner.export_yaml "{\"runner_id\":\"$RY\"}"
json_raw_str yaml "$OUT" | json_unescape >"$TMP/ry.yaml"
normalise() { sed -e 's/^\(  name: avatar-metadata-\).*/\1NAME/' -e 's/^\(  display_name: \).*/\1NAME/' "$1"; }
check "round trip: the same documents but the display name" diff <(normalise "$TMP/r1.yaml") <(normalise "$TMP/ry.yaml")
check_eq "round trip: exactly the two display-name lines differ" "2" "$(diff "$TMP/r1.yaml" "$TMP/ry.yaml" | grep -c '^>')"
check_contains "round trip: the new metadata name" "  name: avatar-metadata-iris_k5-v1" "$(cat "$TMP/ry.yaml")"
ctl manager.create_runner_from_yaml '{"set_name":"iris_k5-v1","fd":{"fd":0}}' --file "$TMP/ry.yaml"
check_eq "create_runner_from_yaml by descriptor succeeds" "0" "$CTL_RC"
check_match "x-v1 becomes x-v2" '"display_name":"iris_k5-v2"' "$OUT"
ctl runner.export_yaml "{\"runner_id\":\"$(runner_id_of "$OUT")\"}"
check "round trip by descriptor: the same documents" diff <(normalise "$TMP/r1.yaml") \
        <(json_raw_str yaml "$OUT" | json_unescape | normalise /dev/stdin)
ctl manager.create_runner_from_yaml '{"set_name":"multi","fd":{"fd":0}}' --file "$TMP/multi.yaml"
ctl runner.export_yaml "{\"runner_id\":\"$(runner_id_of "$OUT")\"}"
check "round trip of the multi-table YAML keeps links and columns" diff <(normalise "$TMP/multi.yaml") \
        <(json_raw_str yaml "$OUT" | json_unescape | normalise /dev/stdin)
# every parameter and option survives the round trip, and the loaded runner's parameters can be updated
ctl manager.create_runner '{"set_name":"rich","seed":42,"max_distribution_plots":3,"pia_data_recipient":"internal","pia_data_type":"health","pia_data_subject":"patients","pia_sensitivity_level":"Very High","report_language":"fr"}'
RR=$(runner_id_of "$OUT")
ctl runner.add_table "{\"runner_id\":\"$RR\",\"table_name\":\"rich\",\"data\":\"a,b,c\\n1,2.5,x\\n2,3.5,y\\n\",\"types\":{\"a\":\"int\",\"b\":\"float\",\"c\":\"category\"}}"
ctl runner.set_parameters "{\"runner_id\":\"$RR\",\"table_name\":\"rich\",\"k\":10,\"ncp\":3,\"use_categorical_reduction\":true,\"column_weights\":{\"a\":2.5,\"b\":1},\"exclude_variable_names\":[\"c\"],\"exclude_variable_method\":\"coordinate_similarity\",\"imputation_method\":\"knn\",\"imputation_k\":4,\"imputation_training_fraction\":0.25,\"imputation_return_data_imputed\":true,\"known_variables\":[\"a\"],\"target\":\"b\",\"quantile_threshold\":10,\"data_augmentation_strategy\":0.5,\"data_augmentation_target_column\":\"c\"}"
check_eq "set_parameters with every avatarization and metrics option" "0" "$CTL_RC"
rich_params=$(grep -o '"parameters":{.*},"warnings"' <<<"$OUT")
ctl runner.run "{\"runner_id\":\"$RR\"}"
check_eq "the rich runner runs" "0" "$CTL_RC"
ctl runner.export_yaml "{\"runner_id\":\"$RR\"}"
json_raw_str yaml "$OUT" | json_unescape >"$TMP/rich.yaml"
check_match "the options are in the YAML (seed, PIA metadata, plots)" \
        'sensitivity_level: Very High.*max_distribution_plots: 3.*seed: 42' "$(tr '\n' ' ' <"$TMP/rich.yaml")"
check_eq "report_language fr gives both reports language: fr" "2" "$(grep -c '^  language: fr$' "$TMP/rich.yaml")"
check_substr "the parameters are in the YAML" "      exclude_variables:
        variable_names:
        - c
        replacement_strategy: coordinate_similarity
      imputation:
        method: knn
        k: 4
        training_fraction: 0.25
        return_data_imputed: true" "$(cat "$TMP/rich.yaml")"
ctl manager.create_runner_from_yaml '{"set_name":"rich","fd":{"fd":0}}' --file "$TMP/rich.yaml"
RR2=$(runner_id_of "$OUT")
ctl runner.export_yaml "{\"runner_id\":\"$RR2\"}"
check "round trip of every parameter and option: the same documents" diff <(normalise "$TMP/rich.yaml") \
        <(json_raw_str yaml "$OUT" | json_unescape | normalise /dev/stdin)
ctl runner.update_parameters "{\"runner_id\":\"$RR2\",\"table_name\":\"rich\",\"k\":12}"
check_eq "update_parameters on a runner loaded from YAML keeps the other parameters" \
        "${rich_params/\"k\":10/\"k\":12}" "$(grep -o '"parameters":{.*},"warnings"' <<<"$OUT")"
wait_runner "$RR"
check_match "the rich run finishes" '"done":true' "$OUT"

ctl manager.create_runner_from_yaml '{"set_name":"bad","yaml":"kind: [unclosed\n"}'
check_eq "invalid YAML is invalid params" "2" "$CTL_RC"
ctl manager.create_runner_from_yaml '{"set_name":"bad","yaml":"kind: AvatarSchema\nmetadata:\n  name: schema\nspec:\n  tables: []\n"}'
check_eq "YAML without AvatarMetadata is invalid params" "2" "$CTL_RC"

# --- create_runner_from_id / from_name -----------------------------------------------------------------
ctl manager.create_runner_from_id '{"set_name":"iris_k5"}'
check_eq "from_id with a non-UUID: invalid params (exit 2)" "2" "$CTL_RC"
check_match "from_id with a non-UUID: the error names set_name" \
        '"code":-32602.*"param":"set_name"' "$(rpc manager.create_runner_from_id '{"set_name":"iris_k5"}')"
mark=$(wc -l <"$SIM_REQUESTS")
ctl manager.create_runner_from_id "{\"set_name\":\"$S1\"}"
check_eq "from_id of a finished run succeeds" "0" "$CTL_RC"
RL=$(runner_id_of "$OUT")
check_match "from_id: the runner is bound to the set and finished" \
        "\"display_name\":\"iris_k5-v1\",\"owner\":[0-9]+,\"state\":\"finished\",\"set_name\":\"$S1\"" "$OUT"
check_eq "from_id: the five jobs of the run are attached" \
        "$(json_strs name "$run1" | sort)" "$(grep -o '"name":"[0-9a-f-]\{36\}"' <<<"$OUT" | cut -d'"' -f4 | sort)"
since=$(tail -n +$((mark + 1)) "$SIM_REQUESTS")
check_match "from_id read the set's YAML" "\"path\":\"/api/resources/$S1\"" "$since"
check_match "from_id listed the set's jobs" "\"query\":\"set_name=$S1\"" "$since"
ctl runner.download "{\"runner_id\":\"$RL\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}}" --out "$TMP/loaded.csv"
check_eq "from_id: results are downloadable" "0" "$CTL_RC"
check "from_id: the same shuffled file" cmp "$TMP/shuffled.csv" "$TMP/loaded.csv"

check_match "the simulator cleans up the standard results" 'cleaned up' \
        "$(sim_control cleanup-results "{\"job\":\"$STD1\"}")"
ctl manager.create_runner_from_id "{\"set_name\":\"$S1\"}"
check_eq "from_id after a cleanup still succeeds" "0" "$CTL_RC"
check_match "from_id after a cleanup warns the results are no longer available" \
        "Results for job '$STD1' are no longer available" "$OUT"
check_eq "the warning comes once" "1" "$(grep -o 'no longer available' <<<"$OUT" | wc -l)"
RC=$(runner_id_of "$OUT")
ctl runner.download "{\"runner_id\":\"$RC\",\"result\":\"shuffled\"}"
check_eq "the cleaned-up result is not found (exit 6)" "6" "$CTL_RC"
check_match "and says so" 'no longer available' "$OUT"
ctl runner.download "{\"runner_id\":\"$RC\",\"result\":\"privacy_metrics\"}"
check_eq "results of the other jobs are still downloadable" "0" "$CTL_RC"

# --- re-run: a new set, naming the one it replaced -------------------------------------------------
ctl runner.run "{\"runner_id\":\"$R1\"}"
check_eq "re-run succeeds" "0" "$CTL_RC"
S1B=$(json_str set_name "$OUT")
check "re-run: a new set" test "$S1B" != "$S1" -a -n "$S1B"
check_match "re-run: replaced, naming the previous set" "\"replaced\":true,\"previous_set_name\":\"$S1\"" "$OUT"
check_match "re-run: a warning names the old set and how to load it" \
        "already has results for set_name '$S1'.*create_runner_from_id" "$OUT"
ctl runner.get_status "{\"runner_id\":\"$R1\"}"
check_match "get_status: the current and the previous set" "\"set_name\":\"$S1B\",\"previous_set_name\":\"$S1\"" "$OUT"
wait_runner "$R1"
check_match "re-run: wait ends done" '"done":true' "$OUT"
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"shuffled\",\"fd\":{\"fd\":0}}" --out "$TMP/rerun.csv"
check "re-run: the new results are downloadable" cmp "$TMP/shuffled.csv" "$TMP/rerun.csv"

ctl manager.create_runner_from_name '{"display_name":"iris_k5"}'
check_eq "from_name succeeds" "0" "$CTL_RC"
check_match "from_name loads the most recent run of that name" "\"state\":\"finished\",\"set_name\":\"$S1B\"" "$OUT"
ctl manager.create_runner_from_name '{"display_name":"IRIS_K5"}'
check_eq "from_name is case-sensitive: unknown name, not found (exit 6)" "6" "$CTL_RC"
raw=$(rpc manager.create_runner_from_name '{"display_name":"no-such-run"}')
check_match "from_name of an unknown name: not_found, naming it" \
        "\"code\":-32005,\"message\":\"No jobs found for display name 'no-such-run'\"" "$raw"

# --- parameter rules ----------------------------------------------------------------------------------
ctl manager.create_runner '{"set_name":"params"}'
RP=$(runner_id_of "$OUT")
ctl runner.add_table "{\"runner_id\":\"$RP\",\"table_name\":\"iris\",\"data\":\"a,b\\n1,2\\n\"}"
check_eq "add_table with inline CSV" "0" "$CTL_RC"
ctl runner.update_parameters "{\"runner_id\":\"$RP\",\"table_name\":\"iris\",\"k\":3}"
check_eq "update_parameters without previous parameters: invalid params" "2" "$CTL_RC"
check_match "update_parameters without previous parameters says so" \
        "No existing parameters found for table 'iris'. Use set_parameters" "$OUT"
raw=$(rpc runner.set_parameters "{\"runner_id\":\"$RP\",\"table_name\":\"iris\",\"k\":5,\"open_dp_epsilon\":1.0}")
check_match "k with open_dp_epsilon: invalid params with the Python message" \
        '"code":-32602,"message":"Invalid params: Expected either k or open_dp_epsilon to be set, not both' "$raw"
raw=$(rpc runner.set_parameters "{\"runner_id\":\"$RP\",\"table_name\":\"iris\",\"k\":5,\"fast_dp_epsilon\":1.0}")
check_match "k with fast_dp_epsilon: invalid params" '"code":-32602' "$raw"
ctl runner.set_parameters "{\"runner_id\":\"$RP\",\"table_name\":\"iris\",\"k\":2}"
check_eq "k = 2 is accepted" "0" "$CTL_RC"
check_match "k = 2 warns in the result" '"warnings":\["You have set k = 2[^"]*"\]' "$OUT"
ctl runner.set_parameters "{\"runner_id\":\"$RP\",\"table_name\":\"iris\",\"k\":1}"
check_eq "k = 1 is invalid params" "2" "$CTL_RC"
ctl runner.set_parameters "{\"runner_id\":\"$RP\",\"table_name\":\"iris\",\"k\":5,\"ncp\":4,\"use_categorical_reduction\":true}"
check_match "set_parameters replaces the previous parameters" \
        '"parameters":\{"k":5,"ncp":4,"use_categorical_reduction":true\},"warnings":\[\]' "$OUT"
ctl runner.update_parameters "{\"runner_id\":\"$RP\",\"table_name\":\"iris\",\"k\":7}"
check_match "update_parameters changes k and keeps the others" \
        '"parameters":\{"k":7,"ncp":4,"use_categorical_reduction":true\}' "$OUT"
ctl runner.update_parameters "{\"runner_id\":\"$RP\",\"table_name\":\"iris\",\"ncp\":null}"
check_match "update_parameters with null removes a parameter" '"parameters":\{"k":7,"use_categorical_reduction":true\}' "$OUT"
ctl runner.export_yaml "{\"runner_id\":\"$RP\"}"
check_match "the YAML follows the updates" 'avatarization:\\n    iris:\\n      k: 7\\n      use_categorical_reduction: true\\n' "$OUT"
ctl runner.run "{\"runner_id\":\"$(runner_id_of "$(ctl manager.create_runner '{"set_name":"noparams"}'; printf '%s' "$OUT")")\"}"
check_eq "run without any table or parameters: invalid state (exit 9)" "9" "$CTL_RC"

# --- a job failing upstream -----------------------------------------------------------------------------
sim_control job-failure '{"parameters_name":"standard","status":"error","exception":"ValueError: simulated failure of bb","count":1}' >/dev/null
RF=$(new_iris_runner failing)
ctl runner.run "{\"runner_id\":\"$RF\"}"
check_eq "failing: run succeeds" "0" "$CTL_RC"
wait_runner "$RF"
check_eq "failing: wait exits 8 (job failed)" "8" "$CTL_RC"
raw=$(rpc runner.wait "{\"runner_id\":\"$RF\"}")
check_match "failing: job_failed with the exception text" \
        '"code":-32013,"message":"Job standard failed with exception: ValueError: simulated failure of bb"' "$raw"
check_match "failing: error.data.name is the class job_failed" '"data":\{.*"name":"job_failed"' "$raw"
check_match "failing: error.data names the job, its server name, status and exception" \
        "\"job\":\"standard\",\"job_name\":\"$(job_field "$(rpc runner.get_status "{\"runner_id\":\"$RF\"}")" standard name)\",\"status\":\"error\",\"exception\":\"ValueError: simulated failure of bb\"" "$raw"
parent_errors() {
        ctl runner.get_status "{\"runner_id\":\"$RF\",\"refresh\":true}"
        [ "$(grep -o '"status":"parent_error"' <<<"$OUT" | wc -l)" = 4 ]
}
if wait_until 10 parent_errors; then
        pass "failing: the four dependent jobs end in parent_error"
else
        fail "failing: the four dependent jobs end in parent_error" "$OUT"
fi
check_match "failing: the runner is failed" '"state":"failed"' "$OUT"
check_match "failing: a dependent job carries its parent's exception" \
        '"parameters_name":"report","kind":"report","name":"[^"]*","status":"parent_error","progress":null,"done":true,"exception":"Parent job [^"]*simulated failure of bb' "$OUT"
ctl runner.download "{\"runner_id\":\"$RF\",\"result\":\"shuffled\"}"
check_eq "failing: no result to download (invalid state, exit 9)" "9" "$CTL_RC"

# --- advice ---------------------------------------------------------------------------------------------
ctl manager.create_runner '{"set_name":"advised"}'
RA=$(runner_id_of "$OUT")
ctl runner.add_table "{\"runner_id\":\"$RA\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS"
jobs_before=$(sim_count "POST /api/jobs")
ctl runner.advise_parameters "{\"runner_id\":\"$RA\"}"
check_eq "advise_parameters succeeds" "0" "$CTL_RC"
advice_file=$(find "$TMP/storage" -name iris.advice.json -type f | head -n 1)
sim_k=$(tr -d ' \n' <"$advice_file" | grep -o '"k":[0-9]*' | head -n 1 | cut -d: -f2)
check_match "the simulator advised a k" '^[0-9]+$' "$sim_k"
check_eq "an advice job ran upstream" "$((jobs_before + 1))" "$(sim_count "POST /api/jobs")"
check_match "the advice of the simulator is returned" "\"advice\":\\{\"iris\":\\{\"k\":$sim_k," "$OUT"
check_match "the parameters get k, ncp and the imputation from the advice" \
        "\"parameters\":\\{\"iris\":\\{\"k\":$sim_k,\"ncp\":[0-9]+,\"use_categorical_reduction\":false,\"imputation_method\":\"knn\"" "$OUT"
ctl runner.export_yaml "{\"runner_id\":\"$RA\"}"
check_match "the YAML holds the advice document" 'kind: AvatarAdviceParameters' "$OUT"
check_match "the YAML holds the advised k" "avatarization:\\\\n    iris:\\\\n      k: $sim_k\\\\n" "$OUT"
ctl runner.run "{\"runner_id\":\"$RA\",\"jobs\":[\"standard\"]}"
check_eq "a run after the advice succeeds" "0" "$CTL_RC"
check_match "a run after advice replaces nothing" '"replaced":false' "$OUT"
check_eq "only the standard job runs when asked" "standard" "$(json_strs parameters_name "$OUT")"
wait_runner "$RA"
check_match "the advised run finishes" '"done":true' "$OUT"
ctl runner.advise_parameters "{\"runner_id\":\"$RA\"}"
check_eq "advice after a run: invalid state (exit 9)" "9" "$CTL_RC"

# --- busy while uploading; the upload stops when its caller leaves ------------------------------------
ctl manager.create_runner '{"set_name":"busy"}'
RB=$(runner_id_of "$OUT")
mkfifo "$TMP/upload.fifo"
exec 7<>"$TMP/upload.fifo"
# the caller waits for its reply until the test makes it leave, while the upload waits for data
pcall_bg "$TMP/upload.out" -f "$TMP/upload.fifo" runner.add_table \
        "{\"runner_id\":\"$RB\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" 7>&-
uploader=$PCALL_PID
uploading() {
        ctl runner.get_status "{\"runner_id\":\"$RB\"}" 7>&-
        grep -q '"state":"uploading"' <<<"$OUT"
}
wait_until 10 uploading
check_match "while a table uploads the runner is uploading" '"state":"uploading"' "$OUT"
ctl runner.set_parameters "{\"runner_id\":\"$RB\",\"table_name\":\"iris\",\"k\":5}" 7>&-
check_eq "set_parameters during an upload: invalid state (exit 9)" "9" "$CTL_RC"
check_match "the refusal says the runner is busy uploading" 'is busy \(uploading\)' "$OUT"
ctl runner.close "{\"runner_id\":\"$RB\"}" 7>&-
check_eq "close during an upload: invalid state" "9" "$CTL_RC"
kill -TERM "$uploader"
wait "$uploader"
check_eq "the uploading caller left without a reply (killed while it waited)" "143" "$?"
exec 7>&-
# closing the connection ends the upload made for it (PROTOCOL.md, "Closing a connection")
given_up() {
        ctl runner.get_status "{\"runner_id\":\"$RB\"}"
        grep -q '"state":"configuring"' <<<"$OUT"
}
if wait_until 10 given_up; then
        pass "the upload of a caller that left stops at once: the runner is free again"
else
        fail "the upload of a caller that left stops at once: the runner is free again" "$OUT"
fi
check_match "and its table is not added" '"tables":\[\]' "$OUT"

# --- table names the server escapes in result file names --------------------------------------------
ctl manager.create_runner '{"set_name":"escaped"}'
RE=$(runner_id_of "$OUT")
ctl runner.add_table "{\"runner_id\":\"$RE\",\"table_name\":\"a.b+c\",\"data\":\"x,y\\n1,2\\n3,4\\n\"}"
check_eq "a table named a.b+c" "0" "$CTL_RC"
ctl runner.set_parameters "{\"runner_id\":\"$RE\",\"table_name\":\"a.b+c\",\"k\":2}"
ctl runner.run "{\"runner_id\":\"$RE\",\"jobs\":[\"standard\"]}"
wait_runner "$RE"
check_match "escaped: the run finishes" '"done":true' "$OUT"
ctl runner.list_results "{\"runner_id\":\"$RE\"}"
check_match "escaped: list_results unescapes the table of a_dot_b_plus_c files" \
        '"file_name":"a_dot_b_plus_c.shuffled-0.csv","table":"a.b\+c"' "$OUT"
ctl runner.download "{\"runner_id\":\"$RE\",\"result\":\"shuffled\",\"table\":\"a.b+c\"}"
check_eq "escaped: download by the table's own name" "0" "$CTL_RC"
check_match "escaped: the avatars of that table" '"data":"x,y\\n3,4\\n1,2\\n"' "$OUT"

# --- a run whose job creation fails upstream --------------------------------------------------------
RX=$(new_iris_runner creation-fails)
sim_fault '{"route":"POST /api/jobs","status":500,"count":1}'
raw=$(rpc runner.run "{\"runner_id\":\"$RX\"}")
check_match "a failing POST /jobs ends the run with the server's error" \
        '"code":-32001,"message":"Creating the standard job failed after 0 job\(s\) were created in set [0-9a-f-]{36}' "$raw"
check_match "its data names the failed job and the set" '"failed_job":"standard"' "$raw"
ctl runner.get_status "{\"runner_id\":\"$RX\"}"
check_match "the runner is usable again, without jobs" '"state":"configuring".*"jobs":\[\]' "$OUT"
ctl runner.run "{\"runner_id\":\"$RX\"}"
check_eq "running it again works" "0" "$CTL_RC"
check_match "the second try replaced nothing (no job had been created)" '"replaced":false' "$OUT"
wait_runner "$RX"
check_match "and finishes" '"done":true' "$OUT"

# --- runner.delete --------------------------------------------------------------------------------------
ctl manager.get_last_results '{"count":5}' # the results of the runner's five jobs, now cached
before=$(sim_count "POST /api/jobs/bulk-delete")
ctl runner.delete "{\"runner_id\":\"$RX\",\"jobs\":[\"report\",\"report_pia\"]}"
check_eq "runner.delete of two jobs succeeds" "0" "$CTL_RC"
check_eq "runner.delete: both deleted upstream" "2" "$(grep -o '"deleted_at":"20' <<<"$OUT" | wc -l)"
check_eq "runner.delete is one bulk-delete" "$((before + 1))" "$(sim_count "POST /api/jobs/bulk-delete")"
results=$(sim_count "GET /api/results/{job}")
ctl manager.get_last_results '{"count":3}'
check_eq "runner.delete drops the cached results, as manager.delete_jobs does" "$((results + 3))" \
        "$(sim_count "GET /api/results/{job}")"
ctl runner.delete "{\"runner_id\":\"$RX\"}"
check_match "runner.delete of all: the five jobs, two already gone" '"failed_jobs":\[' "$OUT"
check_eq "the server keeps no live job of that runner" "" \
        "$(sim_api GET "/jobs?set_name=$(json_str set_name "$(ctl runner.get_status "{\"runner_id\":\"$RX\"}"; printf '%s' "$OUT")")" | grep -o '"name"')"

# --- storage answering errors ------------------------------------------------------------------------
ctl manager.create_runner '{"set_name":"storage-faults"}'
RS=$(runner_id_of "$OUT")
sim_fault '{"route":"PUT /storage/{bucket}/{key}","status":403,"count":1}'
raw=$(rpc runner.add_table "{\"runner_id\":\"$RS\",\"table_name\":\"iris\",\"data\":\"a,b\\n1,2\\n\"}")
check_match "an upload refused by storage: storage_error with the S3 status and code, not retryable" \
        "\"code\":-32014,\"message\":\"PutObject: [^\"]*\",\"data\":\\{\"status\":403,\"code\":\"AccessDenied\",\"file\":\"$RS/[0-9a-f]{32}/iris.csv\",\"retryable\":false,\"name\":\"storage_error\"" "$raw"
ctl runner.get_status "{\"runner_id\":\"$RS\"}"
check_match "after a failed upload the runner is usable and has no table" '"state":"configuring".*"tables":\[\]' "$OUT"
puts=$(sim_count "PUT /storage/{bucket}/{key}")
sim_fault '{"route":"PUT /storage/{bucket}/{key}","status":500,"count":2}'
ctl runner.add_table "{\"runner_id\":\"$RS\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS"
check_eq "storage answering 500 twice: the upload is repeated and succeeds" "0" "$CTL_RC"
check_eq "three PutObject attempts" "$((puts + 3))" "$(sim_count "PUT /storage/{bucket}/{key}")"
sim_fault '{"route":"PUT /storage/{bucket}/{key}","drop":true,"count":1}'
ctl runner.add_table "{\"runner_id\":\"$RS\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS"
check_eq "a dropped storage connection: the upload is repeated and succeeds" "0" "$CTL_RC"
url=$(json_str storage_url "$OUT")
check "the object is whole after the retries" cmp "$IRIS" "$TMP/storage/${url#s3://}"
ctl runner.get_status "{\"runner_id\":\"$R1\"}"
REP1B=$(job_field "$OUT" report name)
sim_fault '{"route":"GET /storage/{bucket}/{key}","body":"short","count":1}'
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"report\",\"fd\":{\"fd\":0}}" --out "$TMP/resumed.pdf"
check_eq "a download cut in the middle is resumed" "0" "$CTL_RC"
check "the resumed download is byte-exact" cmp "$(stored_object "$S1B" "$REP1B" report.pdf)" "$TMP/resumed.pdf"
check_match "the resume asked for the rest (206)" '"route":"GET /storage/\{bucket\}/\{key\}","status":206' \
        "$(tail -n 5 "$SIM_REQUESTS")"
rm -f "$(stored_object "$S1B" "$REP1B" report.pdf)"
ctl runner.download "{\"runner_id\":\"$R1\",\"result\":\"report\"}"
check_eq "a result missing from storage: storage error (exit 7)" "7" "$CTL_RC"
check_match "the error says NoSuchKey" 'NoSuchKey' "$OUT"

# --- avatarctl avatarize: the friendly command over the same methods -----------------------------------
if "$AVATARCTL" help avatarize >/dev/null 2>&1; then
        cp "$IRIS" "$TMP/flowers.csv"
        out=$(cd "$TMP" && "$AVATARCTL" --json --timeout "$(scaled 120)" avatarize flowers.csv --output "$TMP/flowers-out" 2>&1)
        check_eq "avatarize FILE --output DIR succeeds" "0" "$?"
        check_match "avatarize ran the runner to the end" '"display_name":"flowers",.*"done":true' "$out"
        check_eq "avatarize wrote the five result files" \
                "flowers.privacy.json flowers.report.pia.docx flowers.shuffled-0.csv flowers.signal.json report.pdf" \
                "$(cd "$TMP/flowers-out" && printf '%s ' * | sed 's/ $//')"
        check_eq "avatarize: the avatars have the input's header and row count" \
                "$(head -n 1 "$IRIS") $IRIS_ROWS" \
                "$(head -n 1 "$TMP/flowers-out/flowers.shuffled-0.csv") $(($(wc -l <"$TMP/flowers-out/flowers.shuffled-0.csv") - 1))"
        SF=$(json_str set_name "$out")
        check "avatarize: the report is the simulator's PDF" cmp "$TMP/flowers-out/report.pdf" \
                "$(stored_object "$SF" "$(job_field "$out" report name)" report.pdf)"
else
        pass "avatarctl avatarize is not built: skipped"
fi

# --- misc errors ------------------------------------------------------------------------------------
ctl runner.get_status '{"runner_id":"00000000-0000-4000-8000-000000000000"}'
check_eq "an unknown runner is not found (exit 6)" "6" "$CTL_RC"
ctl runner.wait "{\"runner_id\":\"$RP\"}"
check_eq "wait on a runner that never ran: invalid state (exit 9)" "9" "$CTL_RC"
ctl runner.close "{\"runner_id\":\"$RP\"}"
check_match "close forgets the runner" '"closed":true' "$OUT"
ctl runner.get_status "{\"runner_id\":\"$RP\"}"
check_eq "a closed runner is not found" "6" "$CTL_RC"

check_no_sanitizer_reports
finish
