"""What the Python tests share: checks that count, the closing RESULT line, the simulator's
control API, and the environment run-python-test.sh sets up.

Each test module registers its cases with @case; run() runs them in order and prints, like the
shell tests, "ok N - ..." / "not ok N - ..." lines and one "RESULT: NAME passed=N failed=M"
line, which scripts/test adds up. A case that raises counts as a failed check. skip() ends a
case as skipped, with its reason printed (skipped checks are neither passed nor failed).
"""

import json
import os
import sys
import traceback
import urllib.request

SOURCE_ROOT = os.environ.get("SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_ROOT, "client", "python"))
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "lib"))

from wait import scaled, wait_until  # noqa: E402

__all__ = ["case", "check", "check_eq", "check_raises", "skip", "run", "sim", "env", "scaled",
           "wait_until", "SOURCE_ROOT", "Skip"]

_cases = []
_passed = 0
_failed = 0
_skipped = 0


class Skip(Exception):
    """Raised by skip(): the case ends, reported as skipped."""


def env(name, default=None):
    """A variable run-python-test.sh set (AVATARD_TEST_*); fails loudly when required and absent."""
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"{name} is not set: run the test through tests/python/run-python-test.sh")
    return value


def case(fn):
    """Registers a test case (run in the order of definition)."""
    _cases.append(fn)
    return fn


def _line(ok, desc, details=()):
    global _passed, _failed
    if ok:
        _passed += 1
        print(f"ok {_passed + _failed} - {desc}", flush=True)
    else:
        _failed += 1
        print(f"not ok {_passed + _failed} - {desc}", flush=True)
        for d in details:
            for line in str(d).splitlines()[:40]:
                print(f"#   {line}", flush=True)
    return ok


def check(desc, cond, *details):
    """A check that passes when cond is true."""
    return _line(bool(cond), desc, details)


def check_eq(desc, expected, actual):
    """A check that passes when actual == expected."""
    return _line(expected == actual, desc, (f"expected: {expected!r:.2000}", f"actual:   {actual!r:.2000}"))


def check_raises(desc, exc_type, fn, *args, **kwargs):
    """A check that passes when fn(*args, **kwargs) raises exc_type; returns the exception."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        _line(True, desc)
        return e
    except Exception as e:  # the wrong exception
        _line(False, desc, (f"expected {exc_type.__name__}, got {type(e).__name__}: {e}",))
        return None
    _line(False, desc, (f"expected {exc_type.__name__}, nothing was raised",))
    return None


def skip(reason):
    """Ends the current case as skipped."""
    raise Skip(reason)


def run(name):
    """Runs the registered cases; prints the RESULT line; returns the exit status."""
    global _skipped
    for fn in _cases:
        title = fn.__doc__.strip().splitlines()[0] if fn.__doc__ else fn.__name__
        print(f"# {fn.__name__}: {title}", flush=True)
        try:
            fn()
        except Skip as s:
            _skipped += 1
            print(f"ok - {fn.__name__} # SKIP {s}", flush=True)
        except Exception:
            _line(False, f"{fn.__name__} ran to its end", (traceback.format_exc(),))
    print(f"RESULT: {name} passed={_passed} failed={_failed} skipped={_skipped}", flush=True)
    return 0 if _failed == 0 and _passed > 0 else 1


class _Sim:
    """avatar-sim's control API (/_sim) and its storage, as the test's own HTTP client."""

    @property
    def url(self):
        return env("AVATARD_TEST_SIM_URL")

    def control(self, path, body=None):
        """A /_sim call: POST with a JSON body, or GET without one; the decoded answer."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/_sim/{path}", data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=scaled(10)) as r:
            text = r.read().decode()
        return json.loads(text) if text.strip() else None

    def api(self, method, path):
        """An authenticated call of the simulator's API; the decoded answer (or text)."""
        req = urllib.request.Request(f"{self.url}/api{path}", method=method,
                                     headers={"Authorization": f"api-key-v1 {env('AVATARD_TEST_SIM_KEY')}"})
        with urllib.request.urlopen(req, timeout=scaled(10)) as r:
            text = r.read().decode()
        try:
            return json.loads(text)
        except ValueError:
            return text

    def tick(self, count):
        """Advances every job count steps."""
        self.control("tick", {"count": count})

    def clock(self, job_step_ms):
        """Sets the job clock (0: jobs move only on tick)."""
        self.control("clock", {"job_step_ms": job_step_ms})

    def fault(self, rule):
        """Adds a fault rule."""
        self.control("fault", rule)

    def clear_faults(self):
        req = urllib.request.Request(f"{self.url}/_sim/faults", method="DELETE")
        with urllib.request.urlopen(req, timeout=scaled(10)) as r:
            r.read()

    def stored(self, suffix):
        """The content of the object under the storage directory whose path ends with suffix
        (the newest when several), or None."""
        root = env("AVATARD_TEST_STORAGE")
        best = None
        for dirpath, _, files in os.walk(root):
            for f in files:
                p = os.path.join(dirpath, f)
                if p.endswith(suffix) and (best is None or os.stat(p).st_mtime_ns >= os.stat(best).st_mtime_ns):
                    best = p
        if best is None:
            return None
        with open(best, "rb") as fh:
            return fh.read()

    def requests(self, route):
        """The request-log entries of a route (e.g. "PUT /storage/{bucket}/{key}")."""
        out = []
        try:
            with open(env("AVATARD_TEST_SIM_REQUESTS"), encoding="utf-8") as f:
                for line in f:
                    if f'"route":"{route}"' in line:
                        out.append(json.loads(line))
        except FileNotFoundError:
            pass
        return out


sim = _Sim()
