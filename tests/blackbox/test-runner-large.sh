#!/usr/bin/env bash
# Black-box test of a 1 GiB table passed by descriptor: the daemon streams it to storage as a
# multipart upload and streams the 1 GiB result back into a descriptor, with its peak resident
# memory (VmHWM) staying under 64 MiB; the simulator holds the whole object, byte for byte.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

GIB=1073741824
RSS_LIMIT_KB=65536
S3_ID="bbLargeAccessKey"
S3_SECRET="bbLargeSecret0123456789"

# Sanitizers and valgrind inflate the resident set: the bound is then only reported.
instrumented=""
if [ -n "$AVATARD_WRAPPER" ] || grep -qa '__asan_init\|__ubsan_handle' "$AVATARD"; then
        instrumented=yes
fi

start_sim --api-key "$SIM_KEY" --job-step-ms 100 --storage-credentials "$S3_ID:$S3_SECRET" ||
        { fail "avatar-sim starts"; finish; exit $?; }
runner_conf >"$CONF"
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim"

hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
check_rss() { # DESCRIPTION
        local hwm
        hwm=$(hwm_kb)
        echo "# $1: VmHWM $hwm kB, VmRSS $(rss_kb) kB (baseline VmHWM $HWM0 kB)"
        if [ -n "$instrumented" ]; then
                pass "$1: peak resident memory reported ($hwm kB; no bound under instrumentation)"
        else
                check "$1: the daemon's peak resident memory stays under 64 MiB ($hwm kB)" test "$hwm" -lt "$RSS_LIMIT_KB"
        fi
}

# a sparse 1 GiB file with markers at both ends and across the part boundaries (16 MiB)
BIG="$TMP/big.bin"
truncate -s 1G "$BIG"
for off in 0 16777215 16777216 33554431 536870912 1073741800; do
        printf 'avatard-%010d' "$off" | dd of="$BIG" bs=1 seek="$off" conv=notrunc status=none
done
truncate -s 1G "$BIG"
check_eq "the input is 1 GiB" "$GIB" "$(stat -c %s "$BIG")"

ctl manager.create_runner '{"set_name":"large"}'
R=$(runner_id_of "$OUT")
ctl runner.get_status "{\"runner_id\":\"$R\"}"
HWM0=$(hwm_kb)
echo "# baseline: VmHWM $HWM0 kB"

t0=$(date +%s)
out=$(pcall -t 600 -f "$BIG" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"big\",\"data\":{\"fd\":0},\"file_name\":\"big.bin\"}")
t1=$(date +%s)
reply=$(reply_of "$out")
echo "# upload of 1 GiB: $((t1 - t0)) s"
check_match "add_table of 1 GiB by descriptor succeeds" \
        "\"upload\":\\{\"file\":\"$R/[0-9a-f]{32}/big.bin\",\"bytes\":$GIB," "$reply"
check_rss "after the 1 GiB upload"
notes=$(notes_of "$out" runner.progress)
n=$(count_lines "$notes")
check "upload progress: many notifications ($n)" test "$n" -ge 100
check_match "upload progress: the last one says all bytes of the total" \
        "\"bytes\":$GIB,\"total\":$GIB" "$(tail -n 1 <<<"$notes")"
prev=-1
mono=yes
while read -r b; do
        [ "$b" -ge "$prev" ] || mono=no
        prev=$b
done < <(grep -o '"bytes":[0-9]*' <<<"$notes" | cut -d: -f2)
check_eq "upload progress: bytes never go back" "yes" "$mono"
check "upload progress: seq 1, 2, 3, ..." seqs_consecutive "$notes"

check_eq "multipart: one CreateMultipartUpload" "1" "$(sim_count "POST /storage/{bucket}/{key}?uploads")"
check_eq "multipart: 64 parts of 16 MiB" "64" "$(sim_count "PUT /storage/{bucket}/{key}?partNumber&uploadId")"
check_eq "multipart: one CompleteMultipartUpload" "1" "$(sim_count "POST /storage/{bucket}/{key}?uploadId")"
check_eq "multipart: no single PutObject" "0" "$(sim_count "PUT /storage/{bucket}/{key}")"

# the simulator holds the object: HeadObject signed with curl, and the file itself
url=$(json_str storage_url "$reply")
bucket_key=${url#s3://}
head=$(curl -sS -I --max-time "$(scaled 20)" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_ID:$S3_SECRET" \
        -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$SIM_URL/storage/$bucket_key" | tr -d '\r')
check_match "HeadObject: 200" '^HTTP/1\.[01] 200' "$head"
check_match "HeadObject: the object is 1 GiB" "^[Cc]ontent-[Ll]ength: $GIB\$" "$head"
stored="$TMP/storage/$bucket_key"
check "the stored object is the input, byte for byte" cmp "$BIG" "$stored"

# a stream of unknown size (a FIFO): read one part at a time, still multipart
mkfifo "$TMP/stream.fifo"
STREAM_BYTES=$((160 * 1024 * 1024))
(head -c "$STREAM_BYTES" /dev/urandom | tee "$TMP/stream.bin" >"$TMP/stream.fifo") &
writer=$!
out=$(pcall -t 300 -f "$TMP/stream.fifo" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"streamed\",\"data\":{\"fd\":0},\"file_name\":\"streamed.bin\"}")
wait "$writer"
check_match "add_table from a FIFO (size unknown) succeeds" \
        "\"upload\":\\{\"file\":\"$R/[0-9a-f]{32}/streamed.bin\",\"bytes\":$STREAM_BYTES," "$(reply_of "$out")"
url=$(json_str storage_url "$(reply_of "$out")")
check_eq "the stream went as a second multipart upload of 10 parts" "2 74" \
        "$(sim_count "POST /storage/{bucket}/{key}?uploadId") $(sim_count "PUT /storage/{bucket}/{key}?partNumber&uploadId")"
check "the streamed object is stored byte for byte" cmp "$TMP/stream.bin" "$TMP/storage/${url#s3://}"
check_rss "after a 160 MiB stream"
rm -f "$TMP/stream.bin"
ctl runner.export_yaml "{\"runner_id\":\"$R\"}"
check_match "both tables are in the runner" 'name: big\\n.*name: streamed\\n' "$OUT"

# the result comes back as 1 GiB too (the simulator copies a non-CSV input): a streamed download
ctl runner.set_parameters "{\"runner_id\":\"$R\",\"table_name\":\"big\",\"k\":5}"
ctl runner.run "{\"runner_id\":\"$R\",\"jobs\":[\"standard\"]}"
check_eq "run of the large table" "0" "$CTL_RC"
S=$(json_str set_name "$OUT")
STD=$(job_field "$OUT" standard name)
wait_runner "$R" 180
check_match "the large run finishes" '"done":true' "$OUT"
t0=$(date +%s)
out=$(pcall -t 600 -o "$TMP/big-avatars.bin" runner.download \
        "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"table\":\"big\",\"fd\":{\"fd\":0}}")
t1=$(date +%s)
echo "# download of 1 GiB: $((t1 - t0)) s"
check_match "download of the 1 GiB result into a descriptor succeeds" \
        "\"file_name\":\"big.shuffled-0.bin\",\"bytes\":$GIB" "$(reply_of "$out")"
check "the downloaded result is the simulator's object, byte for byte" \
        cmp "$TMP/big-avatars.bin" "$(stored_object "$S" "$STD" big.shuffled-0.bin)"
check_match "download progress notifications" '"event":"download"' "$(notes_of "$out" runner.progress | tail -n 1)"
check_rss "after the 1 GiB download"
rm -f "$TMP/big-avatars.bin"

# inline, the same result is refused rather than held in memory
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"table\":\"big\"}"
check_eq "a 1 GiB result inline is refused (invalid params)" "2" "$CTL_RC"
check_match "the refusal says to pass a descriptor" 'pass a descriptor' "$OUT"
check_rss "after refusing the inline download"

# --- multipart with small parts: a refused part aborts the upload, a failing part is repeated ----------
{
        runner_conf
        printf '  multipart_threshold_bytes: 8388608\n  multipart_part_bytes: 5242880\n'
} >"$CONF" # runner_conf ends with its runners: section
ctl daemon.reload
check_eq "reload with an 8 MiB multipart threshold and 5 MiB parts" "0" "$CTL_RC"
head -c $((12 * 1024 * 1024 + 123)) /dev/urandom >"$TMP/medium.bin"
parts=$(sim_count "PUT /storage/{bucket}/{key}?partNumber&uploadId")
aborts=$(sim_count "DELETE /storage/{bucket}/{key}?uploadId")
sim_fault '{"route":"PUT /storage/{bucket}/{key}?partNumber&uploadId","status":403,"count":1}'
raw=$(pcall -f "$TMP/medium.bin" runner.add_table \
        "{\"runner_id\":\"$R\",\"table_name\":\"medium\",\"data\":{\"fd\":0},\"file_name\":\"medium.bin\"}")
check_match "a part refused by storage fails the upload with storage_error" \
        '"code":-32014,.*"status":403,"code":"AccessDenied"' "$(reply_of "$raw")"
check_eq "the refused multipart upload is aborted" "$((aborts + 1))" "$(sim_count "DELETE /storage/{bucket}/{key}?uploadId")"
check "no object is left behind" test -z "$(find "$TMP/storage" -name medium.bin)"
sim_fault '{"route":"PUT /storage/{bucket}/{key}?partNumber&uploadId","status":500,"count":1}'
parts=$(sim_count "PUT /storage/{bucket}/{key}?partNumber&uploadId")
ctl runner.add_table "{\"runner_id\":\"$R\",\"table_name\":\"medium\",\"data\":{\"fd\":0},\"file_name\":\"medium.bin\"}" \
        --file "$TMP/medium.bin"
check_eq "a part answered 500 once is repeated and the upload succeeds" "0" "$CTL_RC"
check_eq "three parts of 5 MiB, one of them sent twice" "$((parts + 4))" "$(sim_count "PUT /storage/{bucket}/{key}?partNumber&uploadId")"
url=$(json_str storage_url "$OUT")
check "the 12 MiB object is stored byte for byte" cmp "$TMP/medium.bin" "$TMP/storage/${url#s3://}"

check_no_sanitizer_reports
finish
