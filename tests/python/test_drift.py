"""Drift checks of the Python package against what it mirrors, read as text:

- every public def of the published Manager (shared/reference/manager.py.txt, whose
  indentation was lost) exists in avatard.Manager with the same argument names, in the same
  order and of the same kind; what the reference makes optional stays optional; anything the
  package adds is keyword-only;
- every method of the published Runner (shared/reference/runner-api.md) likewise in
  avatard.Runner (set_parameters: table_name, then the daemon's runner.set_parameters params);
- every error class of proto/PROTOCOL.md has its exception class, with the same data.name;
- every daemon method the package calls is in the OpenRPC document (the Runner's delete_*
  methods may still be missing there: they are reported, not failed).
"""

import inspect
import json
import os
import re
import shutil
import subprocess
import sys

from harness import SOURCE_ROOT, case, check, check_eq, env, run

import avatard
from avatard import Manager, Runner
from avatard.errors import ERRORS_BY_CODE

REFERENCE = env("AVATARD_TEST_REFERENCE", os.path.join(SOURCE_ROOT, "..", "shared", "reference"))
OPENRPC = os.path.join(SOURCE_ROOT, "proto", "avatard.openrpc.json")
# Arguments of the published Runner that runner-api.md leaves out: run(jobs_to_run,
# ignore_warnings) is how its docstrings call it.
PUBLISHED_EXTRA = {"run": ["ignore_warnings"]}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def split_top(text, sep=","):
    """Splits at sep outside brackets and quotes."""
    parts, depth, cur, quote = [], 0, "", ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def reference_defs(text):
    """{name: [(param, kind, has_default)]} of the module-level class's defs, read as text:
    from 'def NAME(' to the parenthesis that closes it, across lines."""
    defs = {}
    for m in re.finditer(r"^def ([A-Za-z_][A-Za-z0-9_]*)\(", text, re.M):
        name = m.group(1)
        i, depth = m.end(), 1
        while depth:
            ch = text[i]
            depth += ch == "("
            depth -= ch == ")"
            i += 1
        params, kind = [], "positional"
        for p in split_top(text[m.end():i - 1]):
            if p == "*":
                kind = "keyword"
                continue
            if p.startswith("**"):
                params.append((p[2:].split(":")[0].strip(), "varkw", False))
                continue
            pname = p.split("=")[0].split(":")[0].strip()
            params.append((pname, kind, "=" in p))
        defs[name] = params
    return defs


def ours(fn):
    """The same shape for one of our functions."""
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind == p.VAR_KEYWORD:
            out.append((p.name, "varkw", False))
        elif p.kind == p.KEYWORD_ONLY:
            out.append((p.name, "keyword", p.default is not p.empty))
        elif p.kind == p.VAR_POSITIONAL:
            out.append((p.name, "varpos", False))
        else:
            out.append((p.name, "positional", p.default is not p.empty))
    return out


def compare(label, ref, mine, allowed_extra=()):
    """Checks one method: the reference's params in order and kind, optional ones optional,
    extras keyword-only (or **kwargs, or allowed_extra: optional ones after the reference's)."""
    ref_pos = [p for p in ref if p[1] == "positional"]
    my_pos = [p for p in mine if p[1] == "positional"]
    check_eq(f"{label}: positional arguments in the reference's order",
             [p[0] for p in ref_pos], [p[0] for p in my_pos][:len(ref_pos)])
    extra_pos = [p[0] for p in my_pos[len(ref_pos):]
                 if not (p[0] in allowed_extra and p[2])]
    check(f"{label}: nothing positional beyond the reference's", not extra_pos, f"extra: {extra_pos}")
    mine_by_name = {p[0]: p for p in mine}
    for name, kind, has_default in ref:
        if kind == "keyword":
            got = mine_by_name.get(name)
            check(f"{label}: keyword argument {name}", got is not None and got[1] in ("keyword", "positional"),
                  f"ours: {got}")
        if kind == "varkw":
            check(f"{label}: takes **{name}", any(p[1] == "varkw" for p in mine))
        if has_default:
            got = mine_by_name.get(name)
            check(f"{label}: {name} stays optional", got is not None and got[2], f"ours: {got}")


@case
def manager_matches_the_published_manager():
    """every public def of shared/reference/manager.py.txt is in avatard.Manager"""
    path = os.path.join(REFERENCE, "manager.py.txt")
    check(f"the reference Manager is readable ({path})", os.path.exists(path))
    defs = reference_defs(read(path))
    public = {n: p for n, p in defs.items() if not n.startswith("_") or n == "__init__"}
    # the module's helper function is not a method
    public.pop("_increment_display_name_version", None)
    check("the reference names the fourteen operations and the constructor",
          {"__init__", "authenticate", "forgotten_password", "reset_password", "create_runner",
           "create_runner_from_id", "get_last_results", "get_last_jobs", "get_health",
           "find_ids_by_name", "create_runner_from_name", "create_runner_from_yaml", "delete_job",
           "delete_job_by_id", "delete_jobs"} <= set(public), sorted(public))
    for name, params in sorted(public.items()):
        fn = getattr(Manager, name, None)
        if not check(f"Manager.{name} exists", callable(fn)):
            continue
        compare(f"Manager.{name}", [p for p in params if p[0] != "self"],
                [p for p in ours(fn) if p[0] != "self"])


def runner_api_rows(text):
    """(method, [(param, optional)], varkw, from_openrpc) from runner-api.md's table."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\|\s*([a-z_]+)\s*\|\s*(.*?)\s*\|\s*$", line)
        if not m or m.group(1) == "method":
            continue
        name, cell = m.group(1), m.group(2)
        from_openrpc = "`runner.set_parameters`" in cell
        cell = re.sub(r"\([^)]*\)", "", cell)  # comments in parentheses
        params, varkw = [], False
        if cell.strip() not in ("—", "-", ""):
            for p in cell.split(","):
                p = p.strip()
                if not p or p.startswith("then "):
                    continue
                if p.startswith("**"):
                    varkw = True
                    continue
                params.append((p.rstrip("=").strip(), p.endswith("=")))
        rows.append((name, params, varkw, from_openrpc))
    return rows


@case
def runner_matches_the_published_runner():
    """every method of shared/reference/runner-api.md is in avatard.Runner"""
    path = os.path.join(REFERENCE, "runner-api.md")
    check(f"the reference Runner API is readable ({path})", os.path.exists(path))
    rows = runner_api_rows(read(path))
    check("runner-api.md lists the issue's methods",
          {"add_table", "advise_parameters", "add_link", "set_parameters", "update_parameters",
           "delete_parameters", "delete_link", "delete_table", "get_yaml", "from_yaml", "run",
           "get_job", "get_status", "get_specific_result", "get_all_results", "download_report",
           "print_parameters", "shuffled", "sensitive_unshuffled", "privacy_metrics",
           "signal_metrics", "projections"} <= {r[0] for r in rows}, [r[0] for r in rows])
    openrpc = {m["name"]: m for m in json.loads(read(OPENRPC))["methods"]}
    for name, params, varkw, from_openrpc in rows:
        fn = getattr(Runner, name, None)
        if not check(f"Runner.{name} exists", callable(fn)):
            continue
        if from_openrpc:
            extra = [p["name"] for p in openrpc["runner.set_parameters"]["params"]
                     if p["name"] not in ("runner_id", "table_name")]
            params = params + [(n, True) for n in extra]
        ref = [(n, "positional", opt) for n, opt in params]
        if varkw:
            ref.append(("kwargs", "varkw", False))
        compare(f"Runner.{name}", ref, [p for p in ours(fn) if p[0] != "self"],
                PUBLISHED_EXTRA.get(name, ()))


@case
def error_classes_match_the_protocol():
    """every error class of proto/PROTOCOL.md has its exception class"""
    text = read(os.path.join(SOURCE_ROOT, "proto", "PROTOCOL.md"))
    table = dict((int(c), n) for c, n in re.findall(r"^\| (-320[0-9]{2}) \| `([a-z_]+)` \|", text, re.M))
    check("PROTOCOL.md lists the daemon's error classes", len(table) >= 18, table)
    for code in (-32700, -32600, -32601, -32602, -32603):
        check(f"JSON-RPC code {code} has a class", code in ERRORS_BY_CODE)
    for code, name in sorted(table.items(), reverse=True):
        cls = ERRORS_BY_CODE.get(code)
        check_eq(f"code {code} ({name}) maps to a class named for it", name, cls.default_name if cls else None)
    unknown = set(ERRORS_BY_CODE) - set(table) - {-32700, -32600, -32601, -32602, -32603}
    check("no class for a code the protocol does not have", not unknown, unknown)


@case
def package_calls_only_published_methods():
    """every daemon method the package names is in the OpenRPC document"""
    names = set()
    pkg = os.path.dirname(avatard.__file__)
    for f in sorted(os.listdir(pkg)):
        if f.endswith(".py"):
            names |= set(re.findall(r"\"((?:manager|runner|daemon)\.[a-z_]+)\"", read(os.path.join(pkg, f))))
    served = {m["name"] for m in json.loads(read(OPENRPC))["methods"]}
    check("the package calls a dozen methods or more", len(names) >= 12, sorted(names))
    missing = sorted(names - served)
    check("each is in avatard.openrpc.json", not missing, f"missing: {missing}")


@case
def package_is_stdlib_only():
    """the package imports nothing outside the standard library (pandas only lazily)"""
    pkg = os.path.dirname(avatard.__file__)
    stdlib = set(getattr(sys, "stdlib_module_names", ())) or {
        "csv", "enum", "errno", "io", "json", "os", "re", "socket", "threading", "time", "typing",
        "uuid", "warnings", "weakref", "webbrowser", "__future__"}
    bad = []
    for f in sorted(os.listdir(pkg)):
        if not f.endswith(".py"):
            continue
        for line in read(os.path.join(pkg, f)).splitlines():
            m = re.match(r"^(?:from|import) ([A-Za-z_][A-Za-z0-9_]*)", line)
            if m and m.group(1) not in stdlib:
                bad.append(f"{f}: {line}")
    check("top-level imports are the standard library's", not bad, *bad)
    check("the package is typed (py.typed)", os.path.exists(os.path.join(pkg, "py.typed")))


@case
def meson_installs_it_where_python_looks():
    """meson install puts the package into a directory the system Python searches"""
    meson = shutil.which("meson")
    build = os.environ.get("BUILD_ROOT")
    if not meson or not build:
        check("meson and the build directory are at hand", False, meson, build)
        return
    installed = json.loads(subprocess.run([meson, "introspect", build, "--installed"], capture_output=True,
                                          text=True, check=True).stdout)
    targets = sorted(v for k, v in installed.items() if k.endswith(os.path.join("client", "python", "avatard", "__init__.py")))
    check_eq("the package's __init__.py is installed once", 1, len(targets))
    if not targets:
        return
    pkgdir = os.path.dirname(os.path.dirname(targets[0]))
    prefix = json.loads(subprocess.run([meson, "introspect", build, "--buildoptions"], capture_output=True,
                                       text=True, check=True).stdout)
    prefix = next(o["value"] for o in prefix if o["name"] == "prefix")
    python = "/usr/bin/python3"
    path = subprocess.run([python, "-c", "import sys; print(chr(10).join(sys.path))"], capture_output=True,
                          text=True, check=True).stdout.split()
    if prefix in ("/usr", "/usr/local"):
        check(f"{pkgdir} is on {python}'s path (prefix {prefix})", pkgdir in path, path)
    destdir = os.path.join(env("AVATARD_TEST_TMP"), "destdir")
    p = subprocess.run([meson, "install", "-C", build, "--no-rebuild", "--quiet", "--destdir", destdir,
                        "--tags", "python-runtime"], capture_output=True, text=True)
    check_eq("meson install --tags python-runtime succeeds", 0, p.returncode)
    staged = destdir + pkgdir
    files = sorted(os.listdir(os.path.join(staged, "avatard"))) if os.path.isdir(os.path.join(staged, "avatard")) else []
    check_eq("it installs the package's modules and py.typed",
             sorted(f for f in os.listdir(os.path.dirname(avatard.__file__)) if f.endswith((".py", ".typed"))), files)
    p = subprocess.run([python, "-c", "import avatard, sys; print(avatard.__file__); print(avatard.Manager)"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=staged))
    check("the installed copy imports", p.returncode == 0 and p.stdout.startswith(staged), p.stdout, p.stderr)


sys.exit(run("python-drift"))
