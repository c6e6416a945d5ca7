#!/usr/bin/env bash
# The real AWS CLI (Debian's awscli, /usr/bin/aws, botocore's signer) against avatar-sim's
# storage: the simulator must be neither too strict (refusing what AWS accepts) nor too
# lenient (accepting a wrong signature). Copies a small file (one PutObject) and a 20 MiB one
# (multipart: 8 MB threshold, 5 MB parts) up and back, drives head-object and the multipart
# calls one by one, and checks that a wrong secret and a wrong key id are refused.
# Fails, rather than skips, when /usr/bin/aws is missing (scripts/install-deps installs it).
# Expects $BUILD_ROOT and $SOURCE_ROOT, as the black-box tests.

# shellcheck source=../blackbox/lib.sh
. "$SOURCE_ROOT/tests/blackbox/lib.sh"
SIM_KEY="awscli-key-$$"
# shellcheck source=../blackbox/sim-fixtures.sh
. "$SOURCE_ROOT/tests/blackbox/sim-fixtures.sh"

AWS=/usr/bin/aws
MiB=$((1024 * 1024))

if [ ! -x "$AWS" ]; then
        fail "the AWS CLI is installed as $AWS" "install it with scripts/install-deps (Debian package awscli)"
        finish
        exit 1
fi

# aws ARGS...: the CLI against the simulator, with the environment of a user who has only
# the credentials /access handed out (no config, no metadata service, a throwaway HOME).
aws() {
        HOME="$TMP/home" AWS_CONFIG_FILE="$TMP/home/.aws/config" \
                AWS_SHARED_CREDENTIALS_FILE="$TMP/home/.aws/credentials" \
                AWS_ACCESS_KEY_ID="$KID" AWS_SECRET_ACCESS_KEY="$SECRET" \
                AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER= \
                AWS_MAX_ATTEMPTS=1 \
                "$AWS" --endpoint-url "$SIM_URL/storage" --cli-read-timeout "$(scaled 60)" \
                --cli-connect-timeout "$(scaled 10)" "$@"
}

# same FILE1 FILE2: the files have the same bytes.
same() {
        cmp -s "$1" "$2"
}

# routes_count ROUTE: storage requests of that route in the simulator's log.
routes_count() {
        sim_count "$1"
}

start_sim --api-key "$SIM_KEY" || { fail "avatar-sim starts"; finish; exit 1; }

me=$(sim_api GET /users/me)
BUCKET=$(json_str id "$me")
acc=$(sim_api GET /access -G --data-urlencode "url=s3://$BUCKET/30d/awscli")
KID=$(json_str access_key_id "$acc")
SECRET=$(json_str secret_access_key "$acc")
check "the simulator hands out S3 credentials through /access" test -n "$KID" -a -n "$SECRET"

mkdir -p "$TMP/home"
check "path-style addressing is configured" aws configure set default.s3.addressing_style path
check "the multipart threshold is 8 MB" aws configure set default.s3.multipart_threshold 8MB
check "parts are 5 MB" aws configure set default.s3.multipart_chunksize 5MB
OBJ="$TMP/storage/$BUCKET/30d"

# a small file: one PutObject up; HeadObject and GetObject down
head -c 1000 /dev/urandom >"$TMP/small.bin"
check "aws s3 cp uploads a small file" aws s3 cp --only-show-errors "$TMP/small.bin" "s3://$BUCKET/30d/small.bin"
check "the stored object has the file's bytes" same "$TMP/small.bin" "$OBJ/small.bin"
check_eq "the small file went up in one PutObject" 1 "$(routes_count "PUT /storage/{bucket}/{key}")"
check "aws s3 cp downloads it" aws s3 cp --only-show-errors "s3://$BUCKET/30d/small.bin" "$TMP/small.back"
check "the downloaded file has the same bytes" same "$TMP/small.bin" "$TMP/small.back"

# a file above the multipart threshold: CreateMultipartUpload, 4 UploadParts, Complete; the
# download runs ranged GETs
head -c $((20 * MiB)) /dev/urandom >"$TMP/big.bin"
check "aws s3 cp uploads a 20 MiB file" aws s3 cp --only-show-errors "$TMP/big.bin" "s3://$BUCKET/30d/big.bin"
check_eq "it went up as a multipart upload" 1 "$(routes_count "POST /storage/{bucket}/{key}?uploads")"
check_eq "in 4 parts" 4 "$(routes_count "PUT /storage/{bucket}/{key}?partNumber&uploadId")"
check_eq "completed once" 1 "$(routes_count "POST /storage/{bucket}/{key}?uploadId")"
check "the stored object has the 20 MiB file's bytes" same "$TMP/big.bin" "$OBJ/big.bin"
check "aws s3 cp downloads it" aws s3 cp --only-show-errors "s3://$BUCKET/30d/big.bin" "$TMP/big.back"
check "the downloaded 20 MiB file has the same bytes" same "$TMP/big.bin" "$TMP/big.back"

# head-object
out=$(aws s3api head-object --bucket "$BUCKET" --key 30d/small.bin --output json 2>&1)
check_match "head-object gives the length" '"ContentLength": 1000' "$out"
check_match "head-object gives the ETag" '"ETag": "\\"[0-9a-f]+\\""' "$out"
out=$(aws s3api head-object --bucket "$BUCKET" --key 30d/absent.bin 2>&1)
check_match "head-object of an absent key is 404" '\(404\)' "$out"
out=$(aws s3api get-object --bucket "$BUCKET" --key 30d/absent.bin "$TMP/absent" 2>&1)
check_match "get-object of an absent key surfaces the S3 error code" 'NoSuchKey' "$out"

# the multipart calls one by one
head -c $((5 * MiB)) /dev/urandom >"$TMP/part1"
head -c 12345 /dev/urandom >"$TMP/part2"
UPLOAD=$(aws s3api create-multipart-upload --bucket "$BUCKET" --key 30d/manual.bin \
        --query UploadId --output text 2>&1)
check_match "create-multipart-upload gives an upload id" '^[0-9A-Za-z._-]+$' "$UPLOAD"
ETAG1=$(aws s3api upload-part --bucket "$BUCKET" --key 30d/manual.bin --upload-id "$UPLOAD" \
        --part-number 1 --body "$TMP/part1" --query ETag --output text 2>&1)
check_match "upload-part 1 gives an ETag" '^"[0-9a-f]+"$' "$ETAG1"
ETAG2=$(aws s3api upload-part --bucket "$BUCKET" --key 30d/manual.bin --upload-id "$UPLOAD" \
        --part-number 2 --body "$TMP/part2" --query ETag --output text 2>&1)
check_match "upload-part 2 gives an ETag" '^"[0-9a-f]+"$' "$ETAG2"
printf '{"Parts":[{"PartNumber":1,"ETag":%s},{"PartNumber":2,"ETag":%s}]}' \
        "$(printf '%s' "$ETAG1" | sed 's/"/\\"/g; s/.*/"&"/')" \
        "$(printf '%s' "$ETAG2" | sed 's/"/\\"/g; s/.*/"&"/')" >"$TMP/parts.json"
out=$(aws s3api complete-multipart-upload --bucket "$BUCKET" --key 30d/manual.bin \
        --upload-id "$UPLOAD" --multipart-upload "file://$TMP/parts.json" --output json 2>&1)
check_match "complete-multipart-upload answers the key" '"Key": "30d/manual.bin"' "$out"
cat "$TMP/part1" "$TMP/part2" >"$TMP/manual.expected"
check "the object is the parts in order" same "$TMP/manual.expected" "$OBJ/manual.bin"
check "get-object downloads it" aws s3api get-object --bucket "$BUCKET" --key 30d/manual.bin "$TMP/manual.back"
check "the downloaded object is the parts in order" same "$TMP/manual.expected" "$TMP/manual.back"

UPLOAD=$(aws s3api create-multipart-upload --bucket "$BUCKET" --key 30d/aborted.bin \
        --query UploadId --output text 2>&1)
check_match "a second create-multipart-upload gives an upload id" '^[0-9A-Za-z._-]+$' "$UPLOAD"
check "upload-part into it" aws s3api upload-part --bucket "$BUCKET" --key 30d/aborted.bin \
        --upload-id "$UPLOAD" --part-number 1 --body "$TMP/part2"
check "abort-multipart-upload" aws s3api abort-multipart-upload --bucket "$BUCKET" \
        --key 30d/aborted.bin --upload-id "$UPLOAD"
out=$(aws s3api upload-part --bucket "$BUCKET" --key 30d/aborted.bin --upload-id "$UPLOAD" \
        --part-number 2 --body "$TMP/part2" 2>&1)
check_match "a part of the aborted upload is refused with NoSuchUpload" 'NoSuchUpload' "$out"
check "the aborted upload left no object" test ! -e "$OBJ/aborted.bin"
check_eq "no request the CLI signed rightly was refused (no 403 in the log yet)" 0 \
        "$(grep -c '"status":403' "$SIM_REQUESTS" || true)"
check_match "the requests came from the AWS CLI" '"user_agent":"aws-cli/' "$(cat "$SIM_REQUESTS")"

# refusals: a wrong secret, an unknown key id
out=$(SECRET="wrong-$SECRET" aws s3api put-object --bucket "$BUCKET" --key 30d/forged.bin \
        --body "$TMP/small.bin" 2>&1)
check_match "a wrong secret is refused with SignatureDoesNotMatch" 'SignatureDoesNotMatch' "$out"
check "nothing was stored with a wrong secret" test ! -e "$OBJ/forged.bin"
out=$(SECRET="wrong-$SECRET" aws s3api get-object --bucket "$BUCKET" --key 30d/small.bin \
        "$TMP/forged" 2>&1)
check_match "a download with a wrong secret is refused with SignatureDoesNotMatch" 'SignatureDoesNotMatch' "$out"
# the CLI's Content-MD5 is checked: another body's digest is BadDigest
out=$(aws s3api put-object --bucket "$BUCKET" --key 30d/digest.bin --body "$TMP/small.bin" \
        --content-md5 "$(printf 'other' | openssl dgst -md5 -binary | base64)" 2>&1)
check_match "a Content-MD5 of another body is refused with BadDigest" 'BadDigest' "$out"
check "nothing was stored with a bad digest" test ! -e "$OBJ/digest.bin"
out=$(KID="AKIDNOTISSUED0000000" aws s3api get-object --bucket "$BUCKET" --key 30d/small.bin \
        "$TMP/forged" 2>&1)
check_match "an unknown key id is refused with InvalidAccessKeyId" 'InvalidAccessKeyId' "$out"

finish
