#!/usr/bin/env bash
# Black-box test of the daemon's storage signatures judged by an implementation we did not
# write: avatar-sim records every storage request as received (--wire-log), and botocore's S3
# signer (Debian python3-botocore, verify-sigv4.py) recomputes the signature of each one the
# daemon sent during a full avatarization of a small table (one PutObject) and of a table
# large enough for three multipart parts, with the downloads of their results. Then the
# simulator and botocore are checked to agree: requests botocore signs are accepted by the
# simulator, and one whose signed header was changed after signing is refused by both.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

PYTHON=/usr/bin/python3
VERIFY="$SOURCE_ROOT/tests/blackbox/verify-sigv4.py"
S3_ID="bbSigv4AccessKey"
S3_SECRET="bbSigv4Secret/0123456789+abc"
WIRE="$TMP/wire.jsonl"

if ! "$PYTHON" -c 'import botocore.auth' 2>/dev/null; then
        fail "python3-botocore is installed (scripts/install-deps)"
        finish
        exit $?
fi

start_sim --api-key "$SIM_KEY" --job-step-ms 100 --storage-credentials "$S3_ID:$S3_SECRET" \
        --wire-log "$WIRE" || { fail "avatar-sim starts"; finish; exit $?; }
# multipart from 8 MiB, in parts of 5 MiB (the smallest S3 allows)
{
        runner_conf
        printf '  multipart_threshold_bytes: 8388608\n  multipart_part_bytes: 5242880\n'
} >"$CONF" # runner_conf ends with its runners: section
export AVATAR_API_KEY="$SIM_KEY"
start_daemon || { fail "avatard starts"; finish; exit $?; }
pass "avatard starts against avatar-sim with a wire log"

# a CSV of a little over 12 MiB: three parts
BIG="$TMP/big.csv"
make_csv "$BIG" 400000
big_bytes=$(stat -c %s "$BIG")
check "the large table is over 10 MiB ($big_bytes bytes)" test "$big_bytes" -gt $((10 * 1024 * 1024))

# --- a full avatarization of both tables, and the downloads of the results ---------------------------
ctl manager.create_runner '{"set_name":"sigv4"}'
R=$(runner_id_of "$OUT")
ctl runner.add_table "{\"runner_id\":\"$R\",\"table_name\":\"iris\",\"data\":{\"fd\":0}}" --file "$IRIS"
check_eq "add_table of the small table (one PutObject)" "0" "$CTL_RC"
ctl runner.add_table "{\"runner_id\":\"$R\",\"table_name\":\"big\",\"data\":{\"fd\":0}}" --file "$BIG"
check_eq "add_table of the large table (multipart)" "0" "$CTL_RC"
check_match "the large table went whole" "\"bytes\":$big_bytes," "$OUT"
for t in iris big; do
        ctl runner.set_parameters "{\"runner_id\":\"$R\",\"table_name\":\"$t\",\"k\":5}"
        check_eq "set_parameters of $t" "0" "$CTL_RC"
done
ctl runner.run "{\"runner_id\":\"$R\"}"
check_eq "run succeeds" "0" "$CTL_RC"
S=$(json_str set_name "$OUT")
STD=$(job_field "$OUT" standard name)
wait_runner "$R" 180
check_match "the run finishes" '"done":true,"timed_out":false' "$OUT"
for t in iris big; do
        ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"shuffled\",\"table\":\"$t\",\"fd\":{\"fd\":0}}" \
                --out "$TMP/$t.shuffled.csv"
        check_eq "download of the $t avatars" "0" "$CTL_RC"
done
check "the large result is the simulator's object, byte for byte" \
        cmp "$TMP/big.shuffled.csv" "$(stored_object "$S" "$STD" big.shuffled-0.csv)"
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"report\",\"fd\":{\"fd\":0}}" --out "$TMP/report.pdf"
check_eq "download of the report" "0" "$CTL_RC"
ctl runner.download "{\"runner_id\":\"$R\",\"result\":\"privacy_metrics\",\"table\":\"iris\"}"
check_eq "download of the privacy metrics inline" "0" "$CTL_RC"

# --- botocore recomputes every signature the daemon sent --------------------------------------------
cp "$WIRE" "$TMP/daemon-wire.jsonl"
n_wire=$(count_lines "$(cat "$TMP/daemon-wire.jsonl")")
verdict=$("$PYTHON" "$VERIFY" --all --key "$S3_ID:$S3_SECRET" "$TMP/daemon-wire.jsonl" 2>&1)
rc=$?
echo "$verdict" | grep -v '^ok ' | head -n 60 | sed 's/^/# /'
if [ "$rc" = 0 ]; then
        pass "botocore verifies every storage request of the daemon"
else
        fail "botocore verifies every storage request of the daemon (verify-sigv4.py exited $rc)" \
                "$(grep -m 3 '^FAIL' <<<"$verdict")"
fi
n_ok=$(grep -c '^ok ' <<<"$verdict" || true)
check_eq "each of the $n_wire storage requests in the wire log was verified" "$n_wire" "$n_ok"
n_put=$(grep -cE '^ok +line [0-9]+: PUT /storage/[^? ]+ -> 200:' <<<"$verdict" || true)
check "a single PutObject is among them ($n_put)" test "$n_put" -ge 1
n_create=$(grep -cE '^ok +line [0-9]+: POST /storage/[^ ]*\?uploads(=[^& ]*)? -> 200:' <<<"$verdict" || true)
check "a CreateMultipartUpload is among them ($n_create)" test "$n_create" -ge 1
n_part=$(grep -cE '^ok +line [0-9]+: PUT /storage/[^ ]*[?&]partNumber=[0-9]+(&[^ ]*)? -> 200:' <<<"$verdict" || true)
check "at least three UploadPart are among them ($n_part)" test "$n_part" -ge 3
n_complete=$(grep -cE '^ok +line [0-9]+: POST /storage/[^ ]*[?&]uploadId=[^ ]* -> 200:' <<<"$verdict" || true)
check "a CompleteMultipartUpload is among them ($n_complete)" test "$n_complete" -ge 1
n_get=$(grep -cE '^ok +line [0-9]+: GET /storage/[^ ]* -> 20[06]:' <<<"$verdict" || true)
check "GetObject requests are among them ($n_get)" test "$n_get" -ge 3

# --- the simulator and botocore agree -------------------------------------------------------------------
UID_=$(json_str id "$(sim_api GET /users/me)")
check "the user's bucket is known" is_uuid "$UID_"
mark=$(wc -l <"$WIRE")
agree=$("$PYTHON" - "$SIM_URL" "$UID_" "$S3_ID" "$S3_SECRET" <<'EOF' 2>&1
import sys
import urllib.error
import urllib.request

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

base, bucket, key_id, secret = sys.argv[1:5]
creds = Credentials(key_id, secret)
url = f"{base}/storage/{bucket}/30d/botocore%20check.txt"
body = b"signed by botocore\n"


def send(method, data=None, headers=None, tamper=None):
    request = AWSRequest(method=method, url=url, data=data or b"", headers=headers or {})
    S3SigV4Auth(creds, "s3", "us-east-1").add_auth(request)
    sent = dict(request.headers.items())
    if tamper:
        sent[tamper[0]] = tamper[1]
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


status, _ = send("PUT", body, {"Content-Type": "text/plain"})
print(f"put {status}")
status, got = send("GET")
print(f"get {status} {'same' if got == body else 'different'}")
status, answer = send("PUT", body, {"x-amz-meta-note": "original"},
                      tamper=("x-amz-meta-note", "changed"))
print(f"tampered {status} {' '.join(answer.decode(errors='replace').split())}")
EOF
)
echo "$agree" | sed 's/^/# /'
check_match "the simulator accepts a PutObject botocore signed" '^put 20[01]$' "$agree"
check_match "the simulator accepts a GetObject botocore signed, and answers the object" '^get 200 same$' "$agree"
check_match "the simulator refuses the tampered request (403 SignatureDoesNotMatch)" \
        '^tampered 403 .*<Code>SignatureDoesNotMatch</Code>' "$agree"
tail -n +$((mark + 1)) "$WIRE" >"$TMP/agree-wire.jsonl"
verdict=$("$PYTHON" "$VERIFY" --all --key "$S3_ID:$S3_SECRET" "$TMP/agree-wire.jsonl" 2>&1)
rc=$?
echo "$verdict" | sed 's/^/# /' | head -n 60
check_eq "verify-sigv4.py finds one of the three requests wrong" "1" "$rc"
check_match "botocore agrees with the PutObject" '^ok +line 1: PUT ' "$verdict"
check_match "botocore agrees with the GetObject" '^ok +line 2: GET ' "$verdict"
check_match "botocore finds the tampered request's signature wrong" '^FAIL line 3: PUT .* signature mismatch' "$verdict"
check_match "and shows the changed value in its canonical request" '^ +\| x-amz-meta-note:changed$' "$verdict"

# --- a request that signs a header it does not send -----------------------------------------------------
rec=$(head -n 1 "$TMP/agree-wire.jsonl" | sed 's/SignedHeaders=/SignedHeaders=expect;/')
printf '%s\n' "$rec" >"$TMP/missing-wire.jsonl"
verdict=$("$PYTHON" "$VERIFY" --key "$S3_ID:$S3_SECRET" "$TMP/missing-wire.jsonl" 2>&1)
check_eq "a signed header absent from the wire fails verify-sigv4.py" "1" "$?"
check_match "naming the header" '^FAIL line 1: .*signed header missing: expect ' "$verdict"
: >"$TMP/empty-wire.jsonl"
"$PYTHON" "$VERIFY" --key "$S3_ID:$S3_SECRET" "$TMP/empty-wire.jsonl" >/dev/null 2>&1
check_eq "verify-sigv4.py fails when it checked nothing" "1" "$?"

check_no_sanitizer_reports
finish
