#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The invariants of the fault-injection suite, checked after each iteration.

Reads the simulator's own view (/_sim/jobs, /_sim/uploads) and the daemon's (avatarctl --json
runner list and runner.export_yaml over the socket of $AVATARD_SOCKET) and prints one line per
invariant, "ok - TEXT" or "not ok - TEXT" followed by "#   DETAIL" lines, as the black-box
tests' checks do (tests/faults/faults-lib.sh turns them into passed and failed checks):

  - no orphaned upstream job: every job the simulator holds (not deleted) is in the set of a
    runner of the daemon, and that runner lists it;
  - no duplicate job: a runner's set holds one job per parameters name at most;
  - no multipart upload left behind (the run is finished or abandoned when this is checked;
    with --seen-uploads FILE an upload is reported by the first check that finds it only);
  - no success without a save (--journal FILE: one JSON object per line for each call that
    returned success: {"runner_id", "table"} for add_table, {"runner_id", "table", "k"} for
    set_parameters, {"runner_id", "set_name", "jobs": [names]} for run); checked against the
    daemon after a restart, what it knows is what it saved;
  - no wait beyond its deadline without an error (--waits FILE: one JSON object per line,
    {"label", "elapsed_ms", "deadline_ms", "error": bool, "done": bool}): a wait ended before
    its deadline, done or with an error.

With --clean it checks nothing and soft-deletes every job the simulator still holds, through
the API with the key of $AVATAR_API_KEY, so the next iteration starts from an empty upstream.
Exits 1 when an invariant does not hold, 2 on a usage error. Python's standard library only.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request


def http_json(url, method="GET", headers=None, timeout=30):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def ctl(avatarctl, timeout, *args):
    """avatarctl --json ARGS...; the parsed output, or raises RuntimeError with its text."""
    p = subprocess.run([avatarctl, "--json", "--timeout", str(timeout), *args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout + 30)
    if p.returncode != 0:
        raise RuntimeError(f"avatarctl {' '.join(args)}: exit {p.returncode}: "
                           f"{(p.stdout + p.stderr).strip()[:500]}")
    return json.loads(p.stdout)


class Report:
    def __init__(self):
        self.failed = 0

    def ok(self, text):
        print(f"ok - {text}")

    def not_ok(self, text, details):
        self.failed += 1
        print(f"not ok - {text}")
        for d in details[:20]:
            print(f"#   {d}")
        if len(details) > 20:
            print(f"#   ... and {len(details) - 20} more")

    def check(self, text, details):
        if details:
            self.not_ok(text, details)
        else:
            self.ok(text)


def short(name):
    return (name or "?")[:8]


def check_jobs(rep, jobs, runners, label):
    live = [j for j in jobs if not j.get("deleted_at")]
    by_set = {}
    for r in runners:
        if r.get("set_name"):
            by_set.setdefault(r["set_name"], []).append(r)
    orphans = []
    for j in live:
        owners = by_set.get(j["set_name"], [])
        if not any(j["name"] in {x.get("name") for x in r.get("jobs", [])} for r in owners):
            known = "a runner's set, but the runner does not list it" if owners else "no runner's set"
            orphans.append(f"job {j['name']} ({j['parameters_name']}, {j['status']}) of set "
                           f"{j['set_name']}: {known}")
    rep.check(f"{label}no orphaned upstream job ({len(live)} job(s) upstream, "
              f"{len(runners)} runner(s))", orphans)
    dups = []
    for s, rs in by_set.items():
        count = {}
        for j in live:
            if j["set_name"] == s:
                count[j["parameters_name"]] = count.get(j["parameters_name"], 0) + 1
        for p, n in sorted(count.items()):
            if n > 1:
                dups.append(f"set {s} of runner {short(rs[0]['runner_id'])}: {n} {p} jobs")
    rep.check(f"{label}no duplicate job in a runner's set", dups)


def check_journal(rep, path, runners, avatarctl, timeout, label):
    entries = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                entries.append(json.loads(line))
    by_id = {r["runner_id"]: r for r in runners}
    lost = []
    yaml_of = {}
    for e in entries:
        rid = e["runner_id"]
        r = by_id.get(rid)
        if r is None:
            lost.append(f"runner {rid}: a call on it succeeded, the daemon does not know it")
            continue
        if "table" in e and "k" not in e and e["table"] not in r.get("tables", []):
            lost.append(f"runner {short(rid)}: add_table {e['table']} succeeded, tables now {r.get('tables')}")
        if "k" in e:
            if rid not in yaml_of:
                try:
                    yaml_of[rid] = ctl(avatarctl, timeout, "call", "runner.export_yaml",
                                       json.dumps({"runner_id": rid})).get("yaml", "")
                except (RuntimeError, ValueError) as x:
                    yaml_of[rid] = ""
                    lost.append(f"runner {short(rid)}: export_yaml: {x}")
            if not re.search(rf"^\s+k: {int(e['k'])}\s*$", yaml_of[rid], re.M):
                lost.append(f"runner {short(rid)}: set_parameters k={e['k']} succeeded, its YAML has no k: {e['k']}")
        if "set_name" in e and r.get("set_name") != e["set_name"]:
            lost.append(f"runner {short(rid)}: run succeeded in set {e['set_name']}, the runner now has set "
                        f"{r.get('set_name')}")
        if e.get("jobs"):
            have = {x.get("name") for x in r.get("jobs", [])}
            missing = [n for n in e["jobs"] if n not in have]
            if missing:
                lost.append(f"runner {short(rid)}: run succeeded with {len(e['jobs'])} job(s), "
                            f"{len(missing)} not listed now: {', '.join(short(m) for m in missing)}")
    rep.check(f"{label}no success without a save ({len(entries)} successful call(s) journaled)", lost)


def check_waits(rep, path, label):
    bad = []
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            w = json.loads(line)
            n += 1
            if w["elapsed_ms"] >= w["deadline_ms"] and not w.get("error"):
                bad.append(f"{w['label']}: ran {w['elapsed_ms']} ms to its deadline "
                           f"({w['deadline_ms']} ms) and ended without an error")
            elif not w.get("error") and not w.get("done"):
                bad.append(f"{w['label']}: ended after {w['elapsed_ms']} ms neither done nor with an error")
    rep.check(f"{label}no wait beyond its deadline without an error ({n} wait(s))", bad)


def clean(sim, key):
    jobs = http_json(f"{sim}/_sim/jobs")["jobs"]
    n = 0
    for j in jobs:
        if j.get("deleted_at"):
            continue
        try:
            http_json(f"{sim}/api/jobs/{j['name']}", method="DELETE",
                      headers={"Authorization": f"api-key-v1 {key}"})
            n += 1
        except urllib.error.HTTPError as x:
            print(f"# cannot delete job {j['name']}: {x}", file=sys.stderr)
    print(f"# deleted {n} job(s) left upstream")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sim", required=True, help="the simulator's base URL")
    ap.add_argument("--avatarctl", required=True)
    ap.add_argument("--journal", help="JSON lines of the calls that returned success")
    ap.add_argument("--waits", help="JSON lines of the waits made")
    ap.add_argument("--label", default="", help="a prefix for every line")
    ap.add_argument("--timeout", type=int, default=30, help="avatarctl's timeout (s)")
    ap.add_argument("--seen-uploads", help="uploads reported already (ids, one a line): not "
                    "reported again; the new ones are added")
    ap.add_argument("--clean", action="store_true")
    a = ap.parse_args()
    label = f"{a.label}: " if a.label else ""
    if a.clean:
        clean(a.sim, os.environ.get("AVATAR_API_KEY", ""))
        return 0
    rep = Report()
    try:
        jobs = http_json(f"{a.sim}/_sim/jobs")["jobs"]
        uploads = http_json(f"{a.sim}/_sim/uploads")["uploads"]
    except (OSError, ValueError, KeyError) as x:
        rep.not_ok(f"{label}the simulator answers /_sim/jobs and /_sim/uploads", [str(x)])
        return 1
    try:
        runners = ctl(a.avatarctl, a.timeout, "runner", "list")["runners"]
    except (RuntimeError, ValueError, KeyError, subprocess.TimeoutExpired) as x:
        rep.not_ok(f"{label}the daemon lists its runners", [str(x)])
        return 1
    check_jobs(rep, jobs, runners, label)
    seen = set()
    if a.seen_uploads and os.path.exists(a.seen_uploads):
        with open(a.seen_uploads, encoding="utf-8") as f:
            seen = {line.strip() for line in f if line.strip()}
    new = [u for u in uploads if u["id"] not in seen]
    if a.seen_uploads and new:
        with open(a.seen_uploads, "a", encoding="utf-8") as f:
            f.writelines(u["id"] + "\n" for u in new)
    rep.check(f"{label}no multipart upload left behind"
              + (f" ({len(uploads) - len(new)} reported before)" if len(uploads) > len(new) else ""),
              [f"upload {u['id'][:8]} of {u['key']} ({u['parts']} part(s))" for u in new])
    if a.journal and os.path.exists(a.journal):
        check_journal(rep, a.journal, runners, a.avatarctl, a.timeout, label)
    if a.waits and os.path.exists(a.waits):
        check_waits(rep, a.waits, label)
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
