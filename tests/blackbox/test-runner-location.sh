#!/usr/bin/env bash
# Black-box tests of the Location headers of a server that sends bytes that are not UTF-8 (a
# fake server in Python; avatar-sim sends only clean headers): runner.run's errors show such a
# Location cleaned (one line of valid UTF-8, '?' for each bad byte), so every reply is valid
# UTF-8 JSON; a percent-encoded last segment that decodes to such bytes names no set; a POST
# /jobs Location that is not clean text is not kept (the job's path is), and the state file
# stays valid JSON.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sim-fixtures.sh"
. "$(dirname "$0")/runner-fixtures.sh"

RID=0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0
MODE="$TMP/mode"

# A planted runner (the caller's) with one table already in storage: runner.run goes straight
# to PUT /resources.
mkdir -p "$STATE/runners"
python3 - "$STATE/runners/$RID.json" "$RID" "$(id -u)" <<'EOF'
import json, sys
docs = [
    {"kind": "AvatarMetadata", "metadata": {"name": "avatar-metadata-loc"}, "spec": {"display_name": "loc"}},
    {"kind": "AvatarSchema", "metadata": {"name": "schema"},
     "spec": {"tables": [{"name": "iris", "data": {"volume": "input", "file": "iris.csv"}}]}},
    {"kind": "AvatarSchema", "metadata": {"name": "schema_avatarized"},
     "spec": {"tables": [{"name": "iris", "avatars_data": {"auto": True}}], "schema_ref": "schema"}},
    {"kind": "AvatarParameters", "metadata": {"name": "standard"},
     "spec": {"schema": "schema", "avatarization": {"iris": {"k": 5}},
              "results": {"volume": "results", "path": "standard"}}},
]
runner = {"version": 1, "id": sys.argv[2], "owner": int(sys.argv[3]), "display_name": "loc", "set_name": None,
          "previous_set_name": None, "docs": docs, "options": {},
          "tables": {"iris": {"file": "iris.csv", "bytes": 4551, "storage_url": "s3://avatar/upload/iris.csv"}},
          "warnings": [], "jobs": [], "created_at": 1764000000, "updated_at": 1764000000}
with open(sys.argv[1], "w") as f:
    json.dump(runner, f)
EOF
chmod 0600 "$STATE/runners/$RID.json"

# The fake server: MODE holds "PUT-LOCATION|GET-STATUS|JOBS-LOCATION", each Location a Python
# string whose characters are sent as bytes (latin-1), the way http.server writes headers.
python3 - "$TMP/fake.port" "$MODE" >"$TMP/fake.log" 2>&1 <<'EOF' &
import http.server, json, os, sys
SET = "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"
class H(http.server.BaseHTTPRequestHandler):
    def send(self, status, body, location=None, ctype="application/json"):
        data = body.encode()
        self.send_response(status)
        if location is not None:
            self.send_header("Location", location)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def mode(self):
        with open(sys.argv[2], encoding="latin-1") as f:
            return f.read().rstrip("\n").split("|")
    def do_GET(self):
        put_loc, get_status, jobs_loc = self.mode()
        if self.path.startswith("/api/check_client"):
            self.send(200, json.dumps({"status": "compatible", "message": "Client is up to date",
                                       "most_recent_compatible_client": None}))
        elif self.path.startswith("/api/resources/"):
            if get_status == "200":
                self.send(200, "", ctype="application/yaml")
            else:
                self.send(int(get_status), json.dumps({"message": "cannot read the set"}))
        elif self.path.startswith("/api/jobs?"):
            self.send(200, "[]")
        else:
            self.send(404, json.dumps({"message": "no such path"}))
    def do_PUT(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        put_loc, get_status, jobs_loc = self.mode()
        self.send(201, json.dumps({"message": "Created"}), location=put_loc)
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        put_loc, get_status, jobs_loc = self.mode()
        self.send(201, json.dumps({"name": "job-1"}), location=jobs_loc)
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
EOF
FAKE_PID=$!
printf '/api/resources/5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f|200|/api/jobs/job-1\n' >"$MODE"
wait_for_file 10 "$TMP/fake.port" || { fail "the fake server starts" "$(cat "$TMP/fake.log")"; finish; exit $?; }
printf 'log_level: debug\nupstream:\n  base_url: http://127.0.0.1:%s\n  max_attempts: 1\n' "$(cat "$TMP/fake.port")" >"$CONF"
export AVATAR_API_KEY="fake-key-$$-location"
start_daemon || { fail "avatard starts against the fake server"; kill "$FAKE_PID"; finish; exit $?; }
pass "avatard starts against the fake server"

# run_with MODE: runner.run of the standard job with the fake server in MODE; the raw reply
# line in $TMP/reply (the probe's bytes, as they came) and in REPLY.
REPLY=""
run_with() {
        printf '%s\n' "$1" >"$MODE"
        pcall runner.run "{\"runner_id\":\"$RID\",\"jobs\":[\"standard\"]}" | tail -n 1 >"$TMP/reply"
        REPLY=$(cat "$TMP/reply")
}

# valid_json_utf8 FILE: the file is strict UTF-8 and one JSON value (as Python's json reads it).
valid_json_utf8() {
        python3 -c 'import json, sys; json.loads(open(sys.argv[1], "rb").read().decode("utf-8", "strict"))' "$1"
}

# --- the Location of PUT /resources, then reading it fails ---------------------------------------
run_with $'/api/resources/caf\xe9-\xff\xfe|500|/api/jobs/job-1'
check "201 + a Location that is not UTF-8, read back 500: the reply is valid UTF-8 JSON" valid_json_utf8 "$TMP/reply"
check_match "it is an error of the run" '"error":\{"code":' "$REPLY"
check_contains "that shows the Location cleaned, each bad byte a '?'" \
        "PUT /resources answered 201 with Location /api/resources/caf?-??, and reading it failed" "$REPLY"

# --- a Location outside the API ------------------------------------------------------------------
run_with $'http://elsewhere.example/\xe3\x81|500|/api/jobs/job-1'
check "a Location outside the API with bytes that are not UTF-8: the reply is valid UTF-8 JSON" \
        valid_json_utf8 "$TMP/reply"
check_contains "that shows it cleaned" \
        "PUT /resources answered 201 with a Location outside the API: http://elsewhere.example/?" "$REPLY"

# --- a segment that decodes to bytes that are not UTF-8 names no set -------------------------------
run_with '/api/resources/%FF%FE%0A|200|/api/jobs/job-1'
check "a Location whose segment decodes to bytes that are not UTF-8: the reply is valid UTF-8 JSON" \
        valid_json_utf8 "$TMP/reply"
check_contains "no set is named by those bytes" "The answer to PUT /resources holds no set_name" "$REPLY"
check "the runner file is still valid UTF-8 JSON" valid_json_utf8 "$STATE/runners/$RID.json"

# --- a job's Location that is not UTF-8 is not kept ------------------------------------------------
run_with $'/api/resources/5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f|200|/api/jobs/job-1\xff\xc3'
check "a POST /jobs Location that is not UTF-8: the reply is valid UTF-8 JSON" valid_json_utf8 "$TMP/reply"
check_match "the run succeeds with the set of the Location" \
        '"result":\{"runner_id":"[^"]*","set_name":"5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"' "$REPLY"
check_match "and its job" '"jobs":\[\{"parameters_name":"standard","kind":"standard","name":"job-1"' "$REPLY"
stop_daemon
check "the runner file written after the run is valid UTF-8 JSON" valid_json_utf8 "$STATE/runners/$RID.json"
check_match "it records the job's path as its location, not the header's bytes" '"location": *"/jobs/job-1"' \
        "$(cat "$STATE/runners/$RID.json")"
check_no_match "no runner file was set aside as damaged" 'damaged' "$(ls "$STATE/runners")"

[ "$T_FAILED" -gt 0 ] && sed "s/^/# fake server: /" "$TMP/fake.log"
kill "$FAKE_PID" 2>/dev/null
wait "$FAKE_PID" 2>/dev/null
check_no_sanitizer_reports
finish
