"""The Python package called by other uids (setpriv, as the black-box access tests do): a uid
without a role gets PermissionDeniedError; a table travels with the caller's rights (what the
caller cannot read never reaches the daemon, and a result lands in a file the caller owns);
another uid's runner is refused. The daemon here lets anyone connect and gives nobody the
operate role (run-python-test.sh's access mode)."""

import json
import os
import pwd
import shutil
import subprocess
import sys

from harness import SOURCE_ROOT, case, check, check_eq, env, run, scaled, sim, skip

from avatard import Manager

TMP = env("AVATARD_TEST_TMP")
IRIS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "iris.csv")

# What each snippet runs first: the package, and report(), which prints one JSON line.
PRELUDE = """
import json, os, sys
from avatard import Manager
def report(**kw):
    print(json.dumps(kw))
def attempt(fn, *args, **kwargs):
    try:
        return {"value": fn(*args, **kwargs)}
    except Exception as e:
        return {"error": type(e).__name__, "code": getattr(e, "code", None), "data": getattr(e, "data", None),
                "message": str(e), "bases": [c.__name__ for c in type(e).__mro__]}
m = Manager()
"""


def as_user(user, code):
    """Runs code (after PRELUDE) with /usr/bin/python3 as user; its report() lines, decoded."""
    pw = pwd.getpwnam(user)
    p = subprocess.run(
        ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
         env("AVATARD_TEST_PYTHON"), "-c", PRELUDE + code],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.path.join(SOURCE_ROOT, "client", "python"),
             "AVATARD_SOCKET": os.environ["AVATARD_SOCKET"]},
        capture_output=True, text=True, timeout=scaled(120))
    out = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not out:
        print("\n".join(f"#   {line}" for line in (p.stderr or "(no output)").splitlines()[-20:]))
    return out


def usable():
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        skip("setpriv and root are needed to call as another user")
    for user in ("nobody", "daemon"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            skip(f"no user {user}")


@case
def a_uid_without_a_role():
    """a uid without a role: PermissionDeniedError naming the role it needs"""
    usable()
    out = as_user("daemon", "report(**attempt(m.get_health))")
    got = out[0] if out else {}
    check_eq("get_health as a uid without a role: PermissionDeniedError", "PermissionDeniedError", got.get("error"))
    check_eq("... code -32004", -32004, got.get("code"))
    check_eq("... data.required_role", "read", (got.get("data") or {}).get("required_role"))
    check("... a PermissionError, as Python code expects", "PermissionError" in got.get("bases", []), got)


@case
def the_callers_rights():
    """tables are read and results written with the caller's rights"""
    usable()
    secret = os.path.join(TMP, "secret.csv")
    with open(secret, "w") as f:
        f.write("id,ssn\n1,123\n")
    os.chmod(secret, 0o600)
    shutil.copy(IRIS, os.path.join(TMP, "iris.csv"))
    os.chmod(os.path.join(TMP, "iris.csv"), 0o644)
    closed = os.path.join(TMP, "root-only")
    os.mkdir(closed, 0o700)
    mine = os.path.join(TMP, "nobodys")
    os.mkdir(mine, 0o755)
    os.chown(mine, pwd.getpwnam("nobody").pw_uid, -1)
    code = f"""
r = m.create_runner("nobody-table")
report(step="secret", **attempt(r.add_table, "secret", {secret!r}))
report(step="iris", **attempt(r.add_table, "iris", {os.path.join(TMP, "iris.csv")!r}))
r.set_parameters("iris", k=5)
r.run()
r.wait()
report(step="closed", **attempt(r.download, "shuffled", "iris", path={os.path.join(closed, "out.csv")!r}))
report(step="mine", **attempt(r.download, "shuffled", "iris", path={os.path.join(mine, "out.csv")!r}))
report(step="runner", value=r.runner_id)
"""
    steps = {o.get("step"): o for o in as_user("nobody", code)}
    got = steps.get("secret", {})
    check_eq("a table nobody cannot read: PermissionError in nobody's process", "PermissionError", got.get("error"))
    check("... and nothing of it reached storage", sim.stored("/secret.csv") is None)
    check("a table nobody can read uploads", "error" not in steps.get("iris", {"error": "missing"}), steps.get("iris"))
    with open(IRIS, "rb") as f:
        check_eq("... byte for byte", f.read(), sim.stored("/iris.csv"))
    got = steps.get("closed", {})
    check_eq("a result into a directory nobody cannot write: PermissionError", "PermissionError", got.get("error"))
    check("... no file there", not os.path.exists(os.path.join(closed, "out.csv")))
    got = steps.get("mine", {})
    check("a result into nobody's directory is written", "error" not in got, got)
    out = os.path.join(mine, "out.csv")
    check("... into a file nobody owns", os.path.exists(out) and os.stat(out).st_uid == pwd.getpwnam("nobody").pw_uid)
    runner_id = steps.get("runner", {}).get("value")

    # root's runner is not nobody's, nor nobody's root's (root is admin: it may)
    mine_root = Manager().create_runner("root-runner")
    out = as_user("nobody", f"report(**attempt(m.runner, {mine_root.runner_id!r}))")
    got = out[0] if out else {}
    check_eq("another uid's runner: PermissionDeniedError", "PermissionDeniedError", got.get("error"))
    check("... saying whose it is", "belongs to uid 0" in got.get("message", ""), got)
    if runner_id:
        check_eq("root (admin) may use nobody's runner", runner_id, Manager().runner(runner_id).runner_id)


sys.exit(run("python-access"))
