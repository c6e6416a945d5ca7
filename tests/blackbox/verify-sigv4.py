#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Recomputes the AWS SigV4 signature of every storage request in an avatar-sim wire log
(--wire-log) with botocore's S3 signer, an implementation neither the daemon nor the simulator
shares code with, and compares it with the signature the client sent.

Each request signed with an "Authorization: AWS4-HMAC-SHA256 ..." header is rebuilt from the
recorded bytes: the method, the request target as received, and only the headers named in
SignedHeaders, with their values as received. A signed header that is not on the wire fails
the request (AWS answers such a request IncompleteSignature). botocore then signs the rebuilt
request with the key pair the Credential names, the region and service of its scope, the
timestamp of x-amz-date and the payload hash of x-amz-content-sha256.

Usage: verify-sigv4.py [--key ID:SECRET]... [--all] WIRE-LOG

  --key ID:SECRET  a storage key pair (repeatable)
  --all            a storage request without a SigV4 Authorization header is a failure
                   (otherwise it is listed as skipped)

Prints one line per request and a summary. Exit status: 0 when every request checked matched
and at least one was checked, 1 otherwise, 2 on bad usage or an unreadable log.
"""

import argparse
import datetime as _datetime
import hashlib
import json
import re
import sys
from urllib.parse import urlsplit

try:
    import botocore
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError as e:
    print(f"verify-sigv4: botocore is missing ({e}); install python3-botocore", file=sys.stderr)
    sys.exit(2)

ALGORITHM = "AWS4-HMAC-SHA256"
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,"
    r"\s*Signature=([0-9a-fA-F]+)\s*$")
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"


class Failure(Exception):
    """A request that cannot be verified or does not verify; the text says why."""


def pinned_datetime(when):
    """A stand-in for the datetime module whose utcnow() is `when`: botocore's add_auth() takes
    its timestamp from datetime.datetime.utcnow() and nothing else."""

    class PinnedDatetime(_datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

    class Module:
        datetime = PinnedDatetime

    return Module


class PinnedPayloadAuth(botocore.auth.S3SigV4Auth):
    """botocore's S3 signer with the payload hash of the request as sent: the wire log holds the
    body's hash, not the body, and S3SigV4Auth always recomputes X-Amz-Content-SHA256 from the
    body it is given. Everything else (canonical request, string to sign, key derivation) is
    botocore's own."""

    def __init__(self, credentials, service_name, region_name, payload_hash):
        super().__init__(credentials, service_name, region_name)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def header_values(headers, name):
    """Every value of a header (case-insensitive name) in wire order."""
    return [v for k, v in headers if k.lower() == name]


def implied_canonical_request(rec, signed, payload_hash):
    """The canonical request as a plain reading of the recorded request gives it (path as
    sent, query pairs sorted as sent, signed headers lowercased, sorted, values trimmed), to
    set next to botocore's when they disagree."""
    parts = urlsplit(rec["target"])
    pairs = sorted(p.partition("=")[::2] for p in parts.query.split("&")) if parts.query else []
    lines = [rec["method"], parts.path, "&".join(f"{k}={v}" for k, v in pairs)]
    for name in signed:
        values = header_values(rec["headers"], name)
        lines.append(name + ":" + ",".join(" ".join(v.split()) for v in values))
    lines += ["", ";".join(signed), payload_hash]
    return "\n".join(lines)


def verify(rec, keys):
    """Checks one signed request; returns a description or raises Failure."""
    headers = rec["headers"]
    auth = header_values(headers, "authorization")
    m = AUTH_RE.match(auth[0]) if len(auth) == 1 else None
    if not m:
        raise Failure(f"malformed Authorization header: {auth!r}")
    credential, signed_str, signature = m.group(1), m.group(2), m.group(3).lower()
    scope = credential.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise Failure(f"malformed Credential: {credential}")
    key_id, scope_date, region, service = scope[:4]
    if key_id not in keys:
        raise Failure(f"unknown access key id {key_id} (pass it with --key)")
    signed = signed_str.split(";")
    # only what is on the wire can be signed
    missing = [n for n in signed if not header_values(headers, n)]
    if missing:
        raise Failure("signed header missing: " + ", ".join(missing) +
                      f" (SignedHeaders={signed_str}; on the wire: " +
                      ", ".join(k.lower() for k, _ in headers) + ")")
    if signed != sorted(set(signed)) or any(n != n.lower() for n in signed):
        raise Failure(f"SignedHeaders is not a sorted list of lowercase names: {signed_str}")

    for required in ("host", "x-amz-date", "x-amz-content-sha256"):
        if required not in signed:
            raise Failure(f"{required} is not signed (SignedHeaders={signed_str})")
    if "date" in signed:
        # botocore would replace a signed Date by its own rendering of the timestamp
        raise Failure("Date is signed: botocore signs x-amz-date only")

    amz_date = header_values(headers, "x-amz-date")[0].strip()
    try:
        when = _datetime.datetime.strptime(amz_date, SIGV4_TIMESTAMP)
    except ValueError:
        raise Failure(f"x-amz-date is not YYYYMMDDTHHMMSSZ: {amz_date!r}") from None
    if scope_date != amz_date[:8]:
        raise Failure(f"the Credential scope date {scope_date} is not the day of x-amz-date {amz_date}")
    payload_hash = header_values(headers, "x-amz-content-sha256")[0].strip()
    if payload_hash != "UNSIGNED-PAYLOAD":
        if not re.fullmatch(r"[0-9a-f]{64}", payload_hash):
            raise Failure(f"x-amz-content-sha256 is neither UNSIGNED-PAYLOAD nor a SHA-256: {payload_hash!r}")
        if rec.get("body_sha256") and payload_hash != rec["body_sha256"]:
            raise Failure(f"x-amz-content-sha256 {payload_hash} is not the SHA-256 of the body "
                          f"received ({rec['body_sha256']}, {rec.get('body_len')} bytes)")

    target = rec["target"]
    if target.startswith(("http://", "https://")):
        url = target
    else:
        url = "http://" + header_values(headers, "host")[0].strip() + target
    request = AWSRequest(method=rec["method"], url=url, data=b"")
    for name in signed:
        for value in header_values(headers, name):
            request.headers[name] = value

    signer = PinnedPayloadAuth(Credentials(key_id, keys[key_id]), service, region, payload_hash)
    saved_datetime = botocore.auth.datetime
    saved_blacklist = botocore.auth.SIGNED_HEADERS_BLACKLIST
    try:
        botocore.auth.datetime = pinned_datetime(when)
        # botocore never signs Expect or User-Agent on its own; a client may, and AWS checks
        # them like any other: the request carries only its signed headers here anyway
        botocore.auth.SIGNED_HEADERS_BLACKLIST = []
        signer.add_auth(request)
        sent_by_botocore = request.headers["Authorization"]
        ours = AUTH_RE.match(sent_by_botocore)
        # the canonical request add_auth() signed: the same request without its result
        del request.headers["Authorization"]
        canonical = signer.canonical_request(request)
        sts = signer.string_to_sign(request, canonical)
    finally:
        botocore.auth.datetime = saved_datetime
        botocore.auth.SIGNED_HEADERS_BLACKLIST = saved_blacklist

    if not ours or ours.group(1) != credential or ours.group(2) != signed_str or \
            ours.group(3) != signature:
        implied = implied_canonical_request(rec, signed, payload_hash)
        lines = [
            "signature mismatch",
            f"  sent:     Credential={credential}, SignedHeaders={signed_str}, Signature={signature}",
            "  botocore: " + sent_by_botocore[len(ALGORITHM) + 1:],
            "  botocore canonical request:",
            *("    | " + l for l in canonical.split("\n")),
            "  canonical request implied by the request as received:",
            *("    | " + l for l in implied.split("\n")),
            "  botocore string to sign:",
            *("    | " + l for l in sts.split("\n")),
            "  string to sign implied by the request as received:",
            *("    | " + l for l in [ALGORITHM, amz_date, "/".join(scope[1:]),
                                     hashlib.sha256(implied.encode("utf-8", "surrogateescape")).hexdigest()]),
        ]
        if canonical == implied:
            lines.append("  (the same canonical request: the secret key or the scope differ)")
        raise Failure("\n".join(lines))
    return f"SignedHeaders={signed_str}"


def describe(rec):
    target = rec.get("target", "?")
    return f"{rec.get('method', '?')} {target} -> {rec.get('status', '?')}"


def main():
    ap = argparse.ArgumentParser(description="Verifies the SigV4 signatures of an avatar-sim wire log with botocore.")
    ap.add_argument("--key", action="append", default=[], metavar="ID:SECRET")
    ap.add_argument("--all", action="store_true")
    ap.add_argument("wire_log")
    args = ap.parse_args()
    keys = {}
    for k in args.key:
        key_id, sep, secret = k.partition(":")
        if not sep or not key_id or not secret:
            ap.error(f"--key wants ID:SECRET, not {k!r}")
        keys[key_id] = secret
    try:
        with open(args.wire_log, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError as e:
        print(f"verify-sigv4: cannot read {args.wire_log}: {e.strerror}", file=sys.stderr)
        return 2

    print(f"# botocore {botocore.__version__}, {args.wire_log}")
    ok = failed = skipped = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec.get("headers"), list) or "target" not in rec or "method" not in rec:
                raise ValueError("not a wire-log record")
        except ValueError as e:
            print(f"FAIL line {n}: unreadable ({e})")
            failed += 1
            continue
        auth = header_values(rec["headers"], "authorization")
        if not auth or not auth[0].startswith(ALGORITHM + " "):
            if args.all:
                print(f"FAIL line {n}: {describe(rec)}: no {ALGORITHM} Authorization header")
                failed += 1
            else:
                print(f"skip line {n}: {describe(rec)}: no {ALGORITHM} Authorization header")
                skipped += 1
            continue
        try:
            what = verify(rec, keys)
        except Failure as e:
            print(f"FAIL line {n}: {describe(rec)}: {e}")
            failed += 1
            continue
        print(f"ok   line {n}: {describe(rec)}: {what}")
        ok += 1
    print(f"# checked {ok + failed}: {ok} matched, {failed} failed, {skipped} skipped")
    if ok + failed == 0:
        print("FAIL: no signed request checked")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
