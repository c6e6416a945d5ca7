"""The credential side of the Python package against a daemon that starts without one:
authenticate() with and without a login, the errors on the way, the compatibility check, and
a published-style script with the deprecated username/password login, switched by its import."""

import os
import subprocess
import sys
import warnings

from harness import SOURCE_ROOT, case, check, check_eq, check_raises, env, run, scaled, sim

from avatard import Manager
from avatard.errors import CredentialRejectedError, IncompatibleError, NotAuthenticatedError

TMP = env("AVATARD_TEST_TMP")
HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = env("AVATARD_TEST_ALICE_PASSWORD")

manager = Manager()


@case
def without_a_credential():
    """a daemon without a credential says so"""
    e = check_raises("authenticate() while the daemon holds nothing: NotAuthenticatedError",
                     NotAuthenticatedError, manager.authenticate)
    if e:
        check_eq("... code -32012", -32012, e.code)
    e = check_raises("a call that needs the server: NotAuthenticatedError", NotAuthenticatedError,
                     manager.get_last_jobs, 1)
    if e:
        check_eq("... the daemon's class", "not_authenticated", e.name)
    check_eq("get_health needs no credential", {"message": "ok"}, manager.get_health())
    check_raises("a username without a password: ValueError", ValueError, manager.authenticate, "alice")


@case
def login():
    """authenticate(username, password): the daemon logs in and keeps the session"""
    e = check_raises("a wrong password: CredentialRejectedError", CredentialRejectedError,
                     manager.authenticate, "alice", "wrong")
    check("... a PermissionError", isinstance(e, PermissionError))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        check_eq("the right one: None", None, manager.authenticate("alice", PASSWORD))
    dep = [x for x in w if issubclass(x.category, DeprecationWarning)]
    check("a DeprecationWarning, as the published client gives",
          dep and "deprecated" in str(dep[0].message), [str(x.message) for x in w])
    check("... the password is in no warning", all(PASSWORD not in str(x.message) for x in w))
    check_eq("then authenticate() without arguments is satisfied", None, manager.authenticate())
    check("and calls reach the server", isinstance(manager.get_last_jobs(1), dict))


@case
def compatibility():
    """should_verify_compatibility asks the server; an incompatible answer is IncompatibleError"""
    check_eq("a compatible server: authenticate(should_verify_compatibility=True) passes", None,
             manager.authenticate(should_verify_compatibility=True))
    sim.control("compat", {"status": "incompatible", "message": "too old",
                           "most_recent_compatible_client": "9.9.9"})
    try:
        e = check_raises("an incompatible one: IncompatibleError", IncompatibleError,
                         manager.authenticate, None, None, True)
        if e:
            check("... a DeprecationWarning, as the published client raises", isinstance(e, DeprecationWarning))
            check("... with the server's message", "too old" in str(e), str(e))
        m = Manager(should_verify_compatibility=True)
        check_raises("Manager(should_verify_compatibility=True): the first call checks", IncompatibleError,
                     m.get_health)
        m.close()
    finally:
        sim.control("reset", {"stats": False})
    check_eq("compatible again", "compatible", manager.verify_compatibility(refresh=True)["status"])


@case
def the_legacy_switch():
    """a username/password script of the published client, switched by its import"""
    with open(os.path.join(HERE, "data", "published_login_script.py"), encoding="utf-8") as f:
        original = f.read()
    check_eq("the script imports the published Manager once", 1,
             original.count("from avatars.manager import Manager"))
    path = os.path.join(TMP, "legacy.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(original.replace("from avatars.manager import Manager", "from avatard import Manager"))
    environ = dict(os.environ, PYTHONPATH=os.path.join(SOURCE_ROOT, "client", "python"),
                   AVATAR_USERNAME="alice", AVATAR_PASSWORD=PASSWORD)
    environ.pop("AVATAR_API_KEY", None)
    p = subprocess.run([env("AVATARD_TEST_PYTHON"), path, os.path.join(HERE, "..", "data", "iris.csv"), TMP],
                       env=environ, capture_output=True, text=True, timeout=scaled(240))
    check_eq("it runs to its end", 0, p.returncode)
    if p.returncode:
        print("\n".join(f"#   {line}" for line in p.stderr.splitlines()[-30:]))
    check("the avatars: a 150 x 5 DataFrame", "avatars: (150, 5)" in p.stdout, p.stdout)
    check("the login's DeprecationWarning reached the script", "DeprecationWarning" in p.stderr
          or "deprecated" in p.stderr, p.stderr[-1000:])
    with open(os.path.join(TMP, "legacy-report.pdf"), "rb") as f:
        check("the report, a PDF", f.read(5) == b"%PDF-")


sys.exit(run("python-login"))
