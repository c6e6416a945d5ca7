"""The avatard Python package against avatard and avatar-sim (started by run-python-test.sh):
the socket and its default, every Manager and Runner method, the error classes, descriptor
passing, notifications as iterators, deadlines and two threads at once."""

import contextlib
import io
import os
import re
import sys
import threading
import time
import uuid
import warnings

from harness import case, check, check_eq, check_raises, env, run, scaled, sim, wait_until

from avatard import Manager, Runner, errors
from avatard.errors import (
    AmbiguousError,
    AvatardError,
    CallTimeoutError,
    ConflictError,
    DaemonUnavailableError,
    InvalidParamsError,
    JobFailedError,
    MethodNotFoundError,
    NotFoundError,
    StorageError,
    UpstreamHTTPError,
)
from avatard.models import BulkDeleteResponse, DataSubject, JobKind, JobResponse, PlotKind, Results

TMP = env("AVATARD_TEST_TMP")
IRIS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "iris.csv")
with open(IRIS, "rb") as _f:
    IRIS_BYTES = _f.read()
IRIS_ROWS = IRIS_BYTES.decode().splitlines()

manager = Manager(timeout=scaled(30), wait_timeout=scaled(120))


def tmp(name):
    return os.path.join(TMP, name)


def write(name, text):
    with open(tmp(name), "w", encoding="utf-8") as f:
        f.write(text)
    return tmp(name)


def calls(method):
    """How many calls of method the daemon has dispatched (daemon.status)."""
    return manager.daemon_status()["requests"].get(method, 0)


def connections():
    return manager.daemon_status()["connections"]["current"]


def iris_runner(name, k=5):
    """A runner with the iris table (by path) and k."""
    r = manager.create_runner(name)
    r.add_table("iris", IRIS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r.set_parameters("iris", k=k)
    return r


def linked_runner(name):
    """A runner with a patients table and a visits table, linked by the patient's id."""
    r = manager.create_runner(name)
    r.add_table("patients", write(f"{name}-patients.csv", "id,age\n1,30\n2,40\n3,50\n"), primary_key="id")
    r.add_table("visits", write(f"{name}-visits.csv", "patient_id,cost\n1,10\n1,20\n3,5\n"),
                foreign_keys=["patient_id"])
    r.add_link("patients", "id", "visits", "patient_id")
    return r


@contextlib.contextmanager
def jobs_on_tick():
    """Inside, the simulator's jobs move only on sim.tick(); afterwards every 50 ms again."""
    sim.clock(0)
    try:
        yield
    finally:
        sim.clock(50)


# --- the socket ------------------------------------------------------------------------------------

@case
def socket_and_defaults():
    """the socket: $AVATARD_SOCKET, the default path, socket=, a missing daemon"""
    check_eq("daemon.ping answers pong", "pong", manager.ping())
    check_eq("daemon.ping echoes a value", {"n": 42}, manager.ping({"n": 42}))
    check_eq("Manager() takes $AVATARD_SOCKET", os.environ["AVATARD_SOCKET"], Manager().socket_path)
    saved = os.environ.pop("AVATARD_SOCKET")
    try:
        check_eq("without $AVATARD_SOCKET: /run/avatard/avatard.sock", "/run/avatard/avatard.sock",
                 Manager().socket_path)
    finally:
        os.environ["AVATARD_SOCKET"] = saved
    m = Manager(socket=saved)
    check_eq("Manager(socket=PATH) talks to that socket", "pong", m.ping())
    m.close()
    e = check_raises("no daemon at the socket: DaemonUnavailableError", DaemonUnavailableError,
                     Manager(socket=tmp("nothing.sock")).get_health)
    check("... which is a ConnectionError", isinstance(e, ConnectionError))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m = Manager(base_url="https://avatar.example.com", api_key="not-a-key")
    check("an api_key given to Manager() is refused with a warning",
          any("ignored" in str(x.message) for x in w), [str(x.message) for x in w])
    check("... and does not appear in it", all("not-a-key" not in str(x.message) for x in w))
    check_eq("base_url is ignored: the daemon's server answers", {"message": "ok"}, m.get_health())
    m.close()


# --- errors --------------------------------------------------------------------------------------

@case
def error_classes():
    """JSON-RPC errors become their classes, with the daemon's data"""
    e = check_raises("an unknown method: MethodNotFoundError", MethodNotFoundError, manager.call, "no.such")
    if e:
        check_eq("... code -32601", -32601, e.code)
        check_eq("... data.method names it", "no.such", e.data.get("method"))
        check_eq("... data.name", "method_not_found", e.name)
        check("... an AvatardError", isinstance(e, AvatardError))
    e = check_raises("a bad enum value: InvalidParamsError", InvalidParamsError,
                     manager.create_runner, "x", pia_data_type="bogus")
    if e:
        check_eq("... data.param names it", "pia_data_type", e.data.get("param"))
        check("... a ValueError, as the published client raises", isinstance(e, ValueError))
    e = check_raises("an unknown runner: NotFoundError", NotFoundError, manager.runner, str(uuid.uuid4()))
    e = check_raises("delete_job of a name no run has: NotFoundError", NotFoundError, manager.delete_job,
                     f"no-run-{uuid.uuid4()}")
    check("... a ValueError, as the published client raises", isinstance(e, ValueError))
    pw = env("AVATARD_TEST_ALICE_PASSWORD")
    e = check_raises("a login while the daemon uses an API key: ConflictError", ConflictError,
                     manager.authenticate, "alice", pw)
    if e:
        check_eq("... code -32009", -32009, e.code)
        check("... a ValueError, as the published client raises", isinstance(e, ValueError))
        check("... not retryable", e.retryable is False)
    sim.fault({"route": "GET /api/jobs/{name}", "status": 418, "count": 1})
    e = check_raises("the server's HTTP error: UpstreamHTTPError", UpstreamHTTPError,
                     manager.get_job, str(uuid.uuid4()))
    if e:
        check_eq("... data.status is the server's", 418, e.data.get("status"))
    e = errors.error_from_reply({"code": -32999, "message": "new", "data": {"name": "future"}})
    check("an unknown code: the base class, with its name", type(e) is AvatardError and e.name == "future")


@case
def storage_and_job_errors():
    """a storage refusal and a failed job reach the caller as their classes"""
    r = manager.create_runner("py-errors")
    sim.fault({"route": "PUT /storage/{bucket}/{key}", "status": 403, "count": 1})
    e = check_raises("storage refusing the upload: StorageError", StorageError, r.add_table, "iris", IRIS)
    if e:
        check_eq("... code -32014", -32014, e.code)
    sim.clear_faults()
    r.add_table("iris", IRIS)
    r.set_parameters("iris", k=5)
    sim.control("job-failure", {"parameters_name": "standard", "exception": "boom from the test"})
    r.run()
    e = check_raises("shuffled() of a run whose job failed: JobFailedError", JobFailedError, r.shuffled, "iris")
    if e:
        check("... names the exception", "boom from the test" in str(e), str(e))
        check("... a ValueError, as the published client raises", isinstance(e, ValueError))
    check_eq("get_status says error", "error", r.get_status(JobKind.standard))


@case
def deadlines():
    """a call past its deadline raises CallTimeoutError; the next call connects again"""
    r = iris_runner("py-deadline")
    with jobs_on_tick():
        r.run()
        m = Manager(timeout=0.5)
        t0 = time.monotonic()
        e = check_raises("runner.wait past the Manager's timeout: CallTimeoutError", CallTimeoutError,
                         m.call, "runner.wait", {"runner_id": r.runner_id, "timeout_s": scaled(60)})
        took = time.monotonic() - t0
        check(f"... after the deadline ({took:.3f} s >= 0.5 s)", took >= 0.5 - 0.01)
        check("... a TimeoutError", isinstance(e, TimeoutError))
        m.close()
        t0 = time.monotonic()
        check_raises("a call's own timeout= works the same", CallTimeoutError, manager.call, "runner.wait",
                     {"runner_id": r.runner_id, "timeout_s": scaled(60)}, timeout=0.3)
        check("... after its deadline", time.monotonic() - t0 >= 0.3 - 0.01)
        check_eq("the Manager's next call works (on a new connection)", "pong", manager.ping())
        reply = r.wait(timeout_s=0.3)
        check("a wait the daemon ends at its timeout_s says so", reply["timed_out"] is True and not reply["done"],
              reply)
    r.wait()
    check_eq("once the jobs move, the run finishes", "finished", r.get_status("standard"))


# --- the Manager -------------------------------------------------------------------------------

@case
def manager_operations():
    """every operation of the published Manager"""
    check_eq("get_health: the server's answer", {"message": "ok"}, manager.get_health())
    check_eq("authenticate() without a key: the daemon's credential serves", None, manager.authenticate())

    r = iris_runner("py-mgr")
    r.run()
    r.wait()
    set_name = r.set_name
    check("run gives the set a UUID", uuid.UUID(set_name) is not None)

    last = manager.get_last_jobs(3)
    check_eq("get_last_jobs(3): three jobs", 3, len(last))
    name, job = next(iter(last.items()))
    check("... by name, as JobResponse with the job's attributes",
          isinstance(job, JobResponse) and job.name == name and job.status == "finished", job)
    results = manager.get_last_results(2)
    check_eq("get_last_results(2): two entries", 2, len(results))
    check("... each maps result kinds to URL lists",
          all(isinstance(v, list) for res in results for v in res.values()), results)

    runs = manager.find_ids_by_name("py-mgr")
    check_eq("find_ids_by_name: one run", 1, len(runs))
    sid, jobs = runs[0]
    check_eq("... its set_name", set_name, sid)
    check_eq("... with the five jobs", 5, len(jobs))
    check("... JobResponses of that run", all(isinstance(j, JobResponse) and j.set_name == set_name for j in jobs))

    r2 = manager.create_runner_from_id(set_name)
    check("create_runner_from_id: a Runner on that set", isinstance(r2, Runner) and r2.set_name == set_name)
    check_eq("... whose results are there without a re-run", len(IRIS_ROWS) - 1, len(r2.shuffled("iris")))
    check_raises("create_runner_from_id(42): TypeError", TypeError, manager.create_runner_from_id, 42)
    check_raises("create_runner_from_id('nope'): ValueError", ValueError, manager.create_runner_from_id, "nope")
    r3 = manager.create_runner_from_name("py-mgr")
    check_eq("create_runner_from_name: the latest run of that name", set_name, r3.set_name)
    check_raises("create_runner_from_name of an unknown name: ValueError", ValueError,
                 manager.create_runner_from_name, f"none-{uuid.uuid4()}")

    path = tmp("py-mgr.yaml")
    r.get_yaml(path)
    r4 = manager.create_runner_from_yaml(path, "py-yaml")
    check("create_runner_from_yaml: a runner with the file's tables",
          r4.tables == ["iris"] and r4.display_name.startswith("py-yaml"), (r4.tables, r4.display_name))

    std = r.get_job("standard")
    d = manager.delete_jobs([std.name])
    check("delete_jobs: a BulkDeleteResponse", isinstance(d, BulkDeleteResponse))
    check_eq("... naming the deleted job", [std.name], [j.name for j in d.deleted_jobs])
    check_eq("... and no failure", [], d.failed_jobs)
    d = manager.delete_job_by_id(uuid.UUID(set_name))
    check_eq("delete_job_by_id: the run's other four jobs", 4, len(d.deleted_jobs))

    # two runs of one name: delete_job must be told which
    for _ in range(2):
        x = iris_runner("py-twice")
        x.run()
    e = check_raises("delete_job of a name two runs share: AmbiguousError", AmbiguousError,
                     manager.delete_job, "py-twice")
    if e:
        check("... with the candidates to choose from", len(e.data.get("candidates") or []) == 2, e.data)
        check("... a ValueError, as the published client raises", isinstance(e, ValueError))
    d = manager.delete_job_by_id(x.set_name)
    d = manager.delete_job("py-twice")
    check("delete_job: the one run left of that name", len(d.deleted_jobs) >= 1, d)

    check_eq("forgotten_password: None", None, manager.forgotten_password("alice@avatar-sim.local"))
    check_eq("forgotten_password went upstream once", 1,
             len(sim.requests("POST /api/login/forgotten_password")))
    pw = env("AVATARD_TEST_ALICE_PASSWORD")
    check_eq("reset_password with a UUID token: None", None,
             manager.reset_password("alice@avatar-sim.local", pw, pw, uuid.uuid4()))
    check_raises("reset_password with a token that is no UUID: ValueError", ValueError,
                 manager.reset_password, "alice@avatar-sim.local", pw, pw, "1234")

    r5 = manager.create_runner("py-pia", seed=7, max_distribution_plots=3,
                               pia_data_subject=DataSubject.PATIENTS, pia_data_type="health")
    y = r5.get_yaml()
    check("create_runner passes the PIA metadata (enum or string)",
          "datasubject: patients" in y and "data_type: health" in y, y)
    r5.add_table("iris", IRIS)
    r5.set_parameters("iris", k=5)
    check("... and the seed", "seed: 7" in r5.get_yaml(), r5.get_yaml())
    check("get_jobs: the server's jobs", len(manager.get_jobs(limit=2)) == 2)
    check_eq("verify_compatibility: compatible", "compatible", manager.verify_compatibility()["status"])
    check("list_runners: the caller's runners", r5.runner_id in [x.runner_id for x in manager.list_runners()])


# --- the Runner ----------------------------------------------------------------------------------

@case
def tables_by_descriptor():
    """add_table from a path, an open file, an unlinked file; progress; upload_file"""
    r = manager.create_runner("py-tables")
    seen = []
    r.add_table("iris", IRIS, progress=seen.append)
    check_eq("add_table(path): stored byte for byte", IRIS_BYTES, sim.stored("/iris.csv"))
    check("... the progress callback saw the upload", seen and seen[-1].get("bytes") == len(IRIS_BYTES), seen)
    check_eq("... the runner lists the table", ["iris"], r.tables)

    # the daemon reads the descriptor, never the path: a file whose name is gone still uploads
    p = write("gone.csv", "a,b\n1,2\n3,4\n")
    with open(p, "rb") as f:
        os.unlink(p)
        r.add_table("gone", f)
    check_eq("add_table(open file) of an unlinked file: the daemon read the descriptor",
             b"a,b\n1,2\n3,4\n", sim.stored("/gone.csv"))
    with open(write("later.csv", "x,y\n5,6\n"), "rb") as f:
        r.add_table("later", f, primary_key="x")
        check("the caller's file object stays open", not f.closed)
    names = r.upload_file("iris", IRIS)
    check("upload_file: the object names (iris.csv in a folder of the runner's own)",
          re.fullmatch(re.escape(r.runner_id) + r"/[0-9a-f]{32}/iris\.csv", names[0]) and names[1] is None, names)
    names = r.upload_file("iris", IRIS, avatar_data=IRIS)
    check("upload_file with avatars: both objects in one folder of the runner's own",
          names[0].endswith("/iris.csv") and names[1] == names[0][:-len("iris.csv")] + "iris_avatars.csv", names)
    check_eq("... the avatars stored byte for byte", IRIS_BYTES, sim.stored("/iris_avatars.csv"))
    check_raises("a table that is neither path, file nor DataFrame: TypeError", TypeError,
                 r.add_table, "bad", 42)
    check_raises("a path that does not exist: FileNotFoundError", FileNotFoundError,
                 r.add_table, "bad", tmp("missing.csv"))


@case
def configuration():
    """add_link, set/update_parameters, get_yaml, from_yaml, print_parameters, annotations"""
    r = linked_runner("py-config")
    y = r.get_yaml()
    check("add_link: the YAML links the tables",
          "    links:\n    - field: id\n      to:\n        table: visits\n        field: patient_id\n" in y, y)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r.set_parameters("patients", k=2)
    check("set_parameters k=2: the daemon's warning as a UserWarning",
          any(issubclass(x.category, UserWarning) and "k = 2" in str(x.message) for x in w),
          [str(x.message) for x in w])
    r.set_parameters("visits", k=3, ncp=2)
    check_eq("set_parameters: the parameters in the YAML", {"k": 2},
             r.get_parameters("patients").get("Avatarization"))
    r.update_parameters("visits", ncp=4)
    av = r.get_parameters("visits").get("Avatarization", {})
    check("update_parameters: ncp changes, k stays", av.get("k") == 3 and av.get("ncp") == 4, av)
    check_raises("set_parameters with k and open_dp_epsilon: ValueError", ValueError,
                 r.set_parameters, "visits", k=3, open_dp_epsilon=1.0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        r.print_parameters("visits")
    check("print_parameters prints the table's parameters",
          "--- Avatarization parameters for visits: ---" in out.getvalue() and "'ncp': 4" in out.getvalue(),
          out.getvalue())
    check_raises("print_parameters of an unknown table: ValueError", ValueError, r.print_parameters, "nope")
    path = tmp("config.yaml")
    text = r.get_yaml(path)
    with open(path, encoding="utf-8") as f:
        check_eq("get_yaml(path) writes the YAML it returns", text, f.read())
    old = r.runner_id
    r.from_yaml(path)
    check("from_yaml: the Runner moved to a runner made from the file", r.runner_id != old)
    check_eq("... with the file's tables", ["patients", "visits"], sorted(r.tables))
    check_raises("... and the old runner is closed", NotFoundError, manager.runner, old)
    check_raises("add_annotations: not served", NotImplementedError, r.add_annotations, {"a": "b"})
    check_raises("set_parameters(processors=...): not served", NotImplementedError,
                 r.set_parameters, "visits", k=3, processors=[1])
    check_eq("kill(): nothing, as in the published client", None, r.kill())


@case
def delete_parameters():
    """delete_parameters: one parameter, then all"""
    r = iris_runner("py-delparams")
    r.update_parameters("iris", ncp=3)
    r.delete_parameters("iris", ["ncp"])
    av = r.get_parameters("iris").get("Avatarization", {})
    check("delete_parameters(['ncp']): ncp goes, k stays", "ncp" not in av and av.get("k") == 5, av)
    e = check_raises("delete_parameters of an unknown name: InvalidParamsError", InvalidParamsError,
                     r.delete_parameters, "iris", ["k", "kk"])
    if e:
        check_eq("... data.unknown names it", ["kk"], e.data.get("unknown"))
    check_eq("... and k stays", 5, r.get_parameters("iris").get("Avatarization", {}).get("k"))
    r.delete_parameters("iris")
    check_eq("delete_parameters(table): no parameters left", {}, r.get_parameters("iris"))
    e = check_raises("delete_parameters of a table the runner lacks: NotFoundError", NotFoundError,
                     r.delete_parameters, "nope")
    if e:
        check_eq("... data.table_name names it", "nope", e.data.get("table_name"))


@case
def delete_link():
    """delete_link removes the link"""
    r = linked_runner("py-dellink")
    check("the link is there", "    links:\n" in r.get_yaml())
    r.delete_link("patients", "visits")
    check("delete_link: the YAML has no link", "links:" not in r.get_yaml(), r.get_yaml())
    check("... and both tables", "- name: patients" in r.get_yaml() and "- name: visits" in r.get_yaml())
    check_raises("delete_link again: NotFoundError", NotFoundError, r.delete_link, "patients", "visits")


@case
def delete_table():
    """delete_table removes the table"""
    r = manager.create_runner("py-deltable")
    r.add_table("iris", IRIS)
    r.add_table("other", write("o.csv", "a\n1\n"))
    r.delete_table("other")
    check_eq("delete_table: the runner lists the other tables", ["iris"], r.status()["tables"])
    check("... and the YAML no longer names it", "name: other" not in r.get_yaml())
    check_eq("... as do the Runner's tables", ["iris"], r.tables)
    check_raises("delete_table again: NotFoundError", NotFoundError, r.delete_table, "other")


@case
def advice():
    """advise_parameters applies the server's advice"""
    r = manager.create_runner("py-advice")
    r.add_table("iris", IRIS)
    r.advise_parameters("iris")
    av = r.get_parameters("iris").get("Avatarization", {})
    check("advise_parameters: the table has an advised k", isinstance(av.get("k"), int), av)


@case
def run_and_results():
    """run, get_job/get_status, and every result accessor"""
    r = iris_runner("py-results")
    r.run()
    job = r.get_job(JobKind.standard)
    check("get_job: a JobResponse of the standard job", isinstance(job, JobResponse) and job.kind == "standard", job)
    r.wait()
    check_eq("get_status once done", "finished", r.get_status("standard"))
    std = r.get_job("standard").name
    check_eq("get_specific_result_urls: the file names", ["iris.shuffled-0.csv"],
             r.get_specific_result_urls("standard"))
    rows = r.get_specific_result("iris", JobKind.standard, Results.SHUFFLED, dataframe=False)
    check_eq("get_specific_result(..., dataframe=False): rows as dicts", len(IRIS_ROWS) - 1, len(rows))
    check_eq("... with the table's columns", IRIS_ROWS[0].split(","), list(rows[0].keys()))
    path = tmp("shuffled.csv")
    reply = r.download("shuffled", "iris", path=path)
    with open(path, "rb") as f:
        got = f.read()
    check_eq("download(path=): the file, byte for byte", sim.stored(f"/{std}/iris.shuffled-0.csv"), got)
    check_eq("... the reply counts its bytes", len(got), reply["bytes"])
    uns = r.get_specific_result("iris", "standard", "unshuffled", dataframe=False)
    check_eq("unshuffled: the rows in the input's order", IRIS_ROWS[1].split(","), list(uns[0].values()))
    pm = r.privacy_metrics("iris")
    check("privacy_metrics: a list of dicts for the table",
          isinstance(pm, list) and pm[0]["metadata"]["table_name"] == "iris", pm)
    sm = r.signal_metrics("iris")
    check("signal_metrics: a list of dicts for the table",
          isinstance(sm, list) and sm[0]["metadata"]["table_name"] == "iris", sm)
    plots = r.render_plot("iris", PlotKind.PROJECTION_2D)
    check("render_plot: the plot's HTML", len(plots) == 1 and "<" in plots[0], plots)
    check_raises("render_plot of a kind the run has not: ValueError", ValueError,
                 r.render_plot, "iris", PlotKind.CORRELATION)
    report = r.download_report(tmp("report.pdf"))
    with open(report[0], "rb") as f:
        pdf = f.read()
    check("download_report: a PDF", pdf.startswith(b"%PDF-"))
    check_eq("... byte for byte the server's", sim.stored(f"/{r.get_job('report').name}/report.pdf"), pdf)
    pia = r.download_report(tmp("pia.docx"), report_type="pia")
    with open(pia[0], "rb") as f:
        check("download_report(report_type='pia'): a docx", f.read(4) == b"PK\x03\x04")
    everything = r.get_all_results()
    check_eq("get_all_results: the jobs with results per table",
             ["privacy_metrics", "signal_metrics", "standard"], sorted(everything))
    check("... the standard job's shuffled table and figures",
          {"shuffled", "unshuffled", "figures"} <= set(everything["standard"]["iris"]), everything["standard"]["iris"].keys())
    check("... each figure kind with its HTML",
          set(everything["standard"]["iris"]["figures"]) == {"2d_projection", "distribution"})
    lr = r.list_results()
    check("list_results: each job with its files", all("files" in j for j in lr) and len(lr) == 5)
    d = r.delete()
    check_eq("delete(): the runner's five jobs deleted upstream", 5, len(d.deleted_jobs))
    r.close()
    check_raises("close(): the daemon forgets the runner", NotFoundError, r.status)


# --- notifications -------------------------------------------------------------------------------

def seqs_consecutive(notes):
    return [n["seq"] for n in notes] == list(range(1, len(notes) + 1))


@case
def notifications_as_iterators():
    """manager.watch_jobs and runner.wait as iterators of their notifications"""
    r = iris_runner("py-watch")
    with jobs_on_tick():
        r.run()
        before = calls("manager.watch_jobs")
        stream = manager.watch_jobs(set_name=r.set_name, timeout_s=scaled(60))
        check("the watch is running in the daemon", wait_until(10, lambda: calls("manager.watch_jobs") > before))
        sim.tick(3)
        notes = []
        for n in stream:  # until the daemon's polls catch up with the three steps
            notes.append(n)
            if any(j.get("status") == "pending" for j in n["jobs"]):
                break
        check_eq("the first item is a jobs.changed notification", "jobs.changed", notes[0]["method"])
        check_eq("... about the set's five jobs", 5, len(notes[0]["jobs"]))
        check("a notification saw the jobs moving (pending)", not stream.done, notes)
        sim.tick(30)
        notes += list(stream)
        check("the last saw them finished", all(j["status"] == "finished" for j in notes[-1]["jobs"]), notes[-1])
        check("the iteration ends with the reply: done", stream.done and stream.result["done"] is True,
              stream.result)
        check("every notification carries the watch's subscription",
              all(n["subscription"] == stream.result["subscription"] for n in notes))
        check("seq counts 1, 2, 3 ...", seqs_consecutive(notes), [n["seq"] for n in notes])

        r2 = iris_runner("py-watch2")
        r2.run()
        before = calls("runner.wait")
        follow = r2.watch()
        check("runner.wait is running in the daemon", wait_until(10, lambda: calls("runner.wait") > before))
        sim.tick(33)
        notes = list(follow)
        check("Runner.watch: runner.progress notifications", notes and all(n["method"] == "runner.progress"
                                                                           for n in notes), notes)
        check("... the last with the jobs finished",
              all(j["status"] == "finished" for j in notes[-1]["jobs"]), notes[-1])
        check("... then the reply: done", follow.result["done"] is True)

        r3 = iris_runner("py-watch3")
        r3.run()
        base = connections()
        before = calls("runner.wait")
        follow = r3.watch()
        wait_until(10, lambda: calls("runner.wait") > before)
        during = connections()
        check("a stream has a connection of its own", during == base + 1, (base, during))
        follow.close()
        # the daemon takes a closed peer for one that only shut down its writing side (it
        # answers what is in flight) until it writes to it: the next jobs notification ends it
        sim.tick(3)
        check("closing a stream early closes its connection; the daemon ends the wait",
              wait_until(20, lambda: connections() < during), (during, connections()))
        check_raises("its result is not there", AvatardError, lambda: follow.result)


# --- threads -------------------------------------------------------------------------------------

@case
def two_threads_at_once():
    """one Manager from two threads: calls run side by side, each on its own connection"""
    r = iris_runner("py-threads")
    outcome = {}
    with jobs_on_tick():
        r.run()
        before = calls("runner.wait")

        def waiter():
            try:
                outcome["wait"] = r.wait()
            except Exception as e:  # reported below
                outcome["wait"] = e

        a = threading.Thread(target=waiter)
        a.start()
        check("thread A waits in the daemon", wait_until(10, lambda: calls("runner.wait") > before))
        # thread B (this one) works meanwhile on the same Manager
        b = manager.create_runner("py-threads-b")
        b.add_table("iris", IRIS)
        check_eq("thread B's calls complete while A's wait is in the daemon", ["iris"], b.tables)
        check("... A is still waiting", a.is_alive())
        sim.tick(33)
        a.join(scaled(60))
        check("thread A's wait ends once the jobs move", not a.is_alive() and isinstance(outcome.get("wait"), dict)
              and outcome["wait"]["done"], outcome)

    # two uploads at the same moment, from one Manager
    barrier = threading.Barrier(2)
    results = {}

    def upload(i):
        try:
            x = manager.create_runner(f"py-par-{i}")
            barrier.wait(scaled(10))
            x.add_table(f"t{i}", write(f"par{i}.csv", f"c\n{i}\n" * 1000))
            results[i] = (x.tables, threading.get_ident(), id(manager._connection()))
        except Exception as e:  # reported below
            results[i] = e

    threads = [threading.Thread(target=upload, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(60))
    check("two threads upload at once: both succeed",
          all(isinstance(results.get(i), tuple) and results[i][0] == [f"t{i}"] for i in (1, 2)), results)
    check("... each on its own connection",
          len({results[i][2] for i in (1, 2) if isinstance(results.get(i), tuple)}) == 2)
    for i in (1, 2):
        check_eq(f"... thread {i}'s table stored byte for byte", (f"c\n{i}\n" * 1000).encode(),
                 sim.stored(f"/t{i}.csv"))


sys.exit(run("python-client"))
