"""The issue's "done when": a script written for the published Manager
(data/published_manager_script.py) runs unchanged against avatard once its import is
replaced and its API key removed, and nothing else is touched."""

import difflib
import os
import subprocess
import sys

from harness import SOURCE_ROOT, case, check, check_eq, env, run, scaled

TMP = env("AVATARD_TEST_TMP")
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "data", "published_manager_script.py")
IRIS = os.path.join(HERE, "..", "data", "iris.csv")
IMPORT = ("from avatars.manager import Manager", "from avatard import Manager")
KEY = ', api_key=os.environ["AVATAR_API_KEY"]'


def run_script(path, extra_env=None):
    environ = {k: v for k, v in os.environ.items() if k != "AVATAR_API_KEY"}
    environ["PYTHONPATH"] = os.path.join(SOURCE_ROOT, "client", "python")
    environ.update(extra_env or {})
    return subprocess.run([env("AVATARD_TEST_PYTHON"), path, IRIS, TMP], env=environ,
                          capture_output=True, text=True, timeout=scaled(240))


@case
def the_switch():
    """the published-style script, switched with its import and without the key"""
    with open(SCRIPT, encoding="utf-8") as f:
        original = f.read()
    check_eq("the script imports the published Manager once", 1, original.count(IMPORT[0]))
    check_eq("... and passes an API key once", 1, original.count(KEY))
    switched = original.replace(IMPORT[0], IMPORT[1]).replace(KEY, "")
    changed = [line for line in difflib.ndiff(original.splitlines(), switched.splitlines())
               if line.startswith(("-", "+"))]
    check_eq("the switch changes two lines and nothing else", 4, len(changed))
    path = os.path.join(TMP, "switched.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(switched)

    unchanged = run_script(SCRIPT, {"AVATAR_API_KEY": "unused"})
    check("unswitched, it needs the published client (not installed here)",
          unchanged.returncode != 0 and "No module named 'avatars'" in unchanged.stderr, unchanged.stderr[-500:])

    check("the caller holds no API key", "AVATAR_API_KEY" not in os.environ)
    p = run_script(path)
    out = p.stdout
    print("\n".join(f"#   {line}" for line in out.splitlines()))
    check_eq("the switched script runs to its end", 0, p.returncode)
    if p.returncode:
        print("\n".join(f"#   {line}" for line in p.stderr.splitlines()[-30:]))
    check("get_health answered", "health: {'message': 'ok'}" in out, out)
    check("every job's results", "results of: privacy_metrics, signal_metrics, standard" in out, out)
    check("the avatars: a 150 x 5 DataFrame", "avatars: (150, 5)" in out, out)
    check("the metrics", "privacy metrics: 1" in out and "signal metrics: 1" in out, out)
    check("the projections", "projections: (150, 5) (150, 5)" in out, out)
    check("the standard job finished", "status: finished" in out, out)
    with open(os.path.join(TMP, "report.pdf"), "rb") as f:
        check("the report, a PDF", f.read(5) == b"%PDF-")
    check("find_ids_by_name: the run with its five jobs", " 5 jobs" in out, out)
    check("get_last_jobs: five finished jobs", "last jobs: finished, finished, finished, finished, finished" in out,
          out)
    check("create_runner_from_name reloads the results", "reloaded: (150, 5)" in out, out)
    check("delete_job deletes the run's five jobs", "deleted: 5 failed: 0" in out, out)
    check("nothing went to stderr but warnings", all("Warning" in line or not line.strip() or line.startswith(" ")
                                                    for line in p.stderr.splitlines()), p.stderr[-2000:])


sys.exit(run("python-published"))
