"""``Runner``: the published Avatar client's Runner, for a runner the daemon holds.

A runner lives in the daemon (it survives this process and daemon restarts); this object
names it by ``runner_id`` and calls the daemon's ``runner.*`` methods. Tables go to the
daemon as descriptors opened with the caller's rights, results come back through
descriptors too (a file, or a pipe into memory): see :mod:`avatard.data`.

The result accessors (``shuffled``, ``privacy_metrics``, ``get_all_results`` ...) wait for the
jobs they need in the daemon (``runner.wait``: one poller however many wait) and download
what the job wrote (``runner.download``).
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .data import PipeSink, open_sink, open_source, parse_result
from .errors import DaemonTimeoutError, JobFailedError, NotFoundError
from .models import (
    JOB_EXECUTION_ORDER,
    BulkDeleteResponse,
    JobKind,
    JobResponse,
    LinkMethod,
    PlotKind,
    ReportType,
    Results,
    bulk_delete_response,
    job_response,
    plain,
)
from .transport import Stream
from .yamlite import load_all

if TYPE_CHECKING:  # pragma: no cover
    from .manager import Manager

__all__ = ["Runner"]

#: Statuses of a job that ended in error.
ERROR_STATUSES = ("error", "parent_error")

#: The results get_all_results() gathers for each job and table (as the published client).
RESULTS_TO_STORE = (
    Results.SHUFFLED, Results.UNSHUFFLED, Results.PRIVACY_METRICS, Results.SIGNAL_METRICS,
    Results.PROJECTIONS_ORIGINAL, Results.PROJECTIONS_AVATARS, Results.METADATA, Results.FIGURES,
)

#: The job (parameters name) each result comes from, as runner.download picks it.
RESULT_JOB = {
    "shuffled": "standard", "unshuffled": "standard", "original_projections": "standard",
    "avatar_projections": "standard", "projections": "standard", "figures": "standard",
    "figures_metadata": "standard", "metadata": "standard", "run_metadata": "standard",
    "privacy_metrics": "privacy_metrics", "signal_metrics": "signal_metrics",
    "report": "report", "report_pia": "report_pia", "advice": "advice_parameters",
}

#: Results that exist once per table.
PER_TABLE = ("shuffled", "unshuffled", "original_projections", "avatar_projections", "projections",
             "figures", "privacy_metrics", "signal_metrics", "report_pia", "advice")

#: Parameter documents of the resource YAML and the spec keys that hold a table's parameters.
_PARAMETER_DOCS = (
    ("AvatarParameters", "Avatarization"),
    ("AvatarPrivacyMetricsParameters", "Privacy metrics"),
    ("AvatarSignalMetricsParameters", "Signal metrics"),
)


def _pname(job_name: Any) -> str:
    """The runner's name of a job (its parameters name) from a JobKind or a string."""
    name = str(plain(job_name))
    return "advice_parameters" if name == "advice" else name


class Runner:
    """One avatarization: tables, links, parameters, jobs and their results.

    Created by :class:`~avatard.Manager` (``create_runner*``, ``runner``). The methods keep the
    published Runner's names, argument names and defaults; extra keyword-only arguments come
    after them.

    Attributes:
        runner_id: the daemon's id of this runner.
        display_name: the name given at creation (the set's display name upstream).
        set_name: the set's UUID once it ran (``None`` before).
    """

    def __init__(self, manager: "Manager", status: Dict[str, Any]) -> None:
        self._manager = manager
        self.runner_id: str = status["runner_id"]
        self._status: Dict[str, Any] = {}
        self._update(status)

    def __repr__(self) -> str:
        return f"Runner(runner_id={self.runner_id!r}, display_name={self.display_name!r})"

    # -- plumbing ------------------------------------------------------------------------------

    def _update(self, status: Any) -> None:
        """Keeps the last RunnerStatus the daemon sent."""
        if isinstance(status, dict) and status.get("runner_id") == self.runner_id and "state" in status:
            self._status = dict(status)

    @property
    def display_name(self) -> str:
        return str(self._status.get("display_name", ""))

    @property
    def set_name(self) -> Optional[str]:
        return self._status.get("set_name")

    @property
    def tables(self) -> List[str]:
        """The names of the runner's tables."""
        return list(self._status.get("tables") or [])

    def _call(self, method: str, params: Optional[Dict[str, Any]] = None, *, keep_none: Iterable[str] = (),
              fds: Sequence[int] = (), timeout: Optional[float] = None, on_notification: Any = None) -> Any:
        """Calls a runner.* method with this runner's id; ``None`` params are left out except
        those named in keep_none."""
        body: Dict[str, Any] = {"runner_id": self.runner_id}
        keep = set(keep_none)
        for k, v in (params or {}).items():
            if v is not None or k in keep:
                body[k] = plain(v)
        return self._manager.call(method, body, fds=fds, timeout=timeout, on_notification=on_notification)

    @staticmethod
    def _warn(result: Any) -> None:
        for w in (result.get("warnings") or []) if isinstance(result, dict) else []:
            warnings.warn(str(w), UserWarning, stacklevel=3)

    # -- configuration -------------------------------------------------------------------------

    def add_annotations(self, annotations: Dict[str, str]) -> None:
        """Not served: the daemon writes the metadata annotations itself and has no method
        to add more. Raises NotImplementedError."""
        raise NotImplementedError("avatard has no method to add metadata annotations to a runner")

    def add_table(
        self,
        table_name: str,
        data: Any,
        primary_key: Optional[str] = None,
        foreign_keys: Optional[List[str]] = None,
        time_series_time: Optional[str] = None,
        types: Optional[Dict[str, Any]] = None,
        individual_level: Optional[bool] = None,
        avatar_data: Any = None,
        *,
        progress: Optional[Callable[[Dict[str, Any]], None]] = None,
    ) -> None:
        """Uploads a table and adds it to the runner's schema.

        Args:
            table_name: the table's name.
            data: a path, an open file (read from its position) or a pandas DataFrame (its CSV
                goes through a pipe, never a temporary file). The daemon reads the descriptor:
                the caller's rights decide what can be read.
            primary_key, foreign_keys, time_series_time, individual_level: the schema's.
            types: column types (``int``, ``float``, ``bool``, ``category``, ``datetime``,
                ``datetime_tz`` or ColumnType); for a DataFrame they default to its dtypes.
            avatar_data: existing avatars of the table, in any form ``data`` takes.
            progress: called with each upload notification (``bytes``, ``total`` ...).
        """
        self._add_table(table_name, data, avatar_data, progress, dict(
            primary_key=primary_key,
            foreign_keys=None if foreign_keys == [None] else foreign_keys,
            time_series_time=time_series_time, types=types, individual_level=individual_level))

    def _add_table(self, table_name: str, data: Any, avatar_data: Any,
                   progress: Optional[Callable[[Dict[str, Any]], None]],
                   schema: Dict[str, Any]) -> Dict[str, Any]:
        """runner.add_table with the table (and avatars) as descriptors; returns the result."""
        sources = [open_source(data, table_name)]
        params: Dict[str, Any] = {"table_name": table_name, "data": {"fd": 0},
                                  "file_name": sources[0].file_name}
        failed = True
        try:
            if avatar_data is not None:
                sources.append(open_source(avatar_data, f"{table_name}_avatars"))
                params["avatar_data"] = {"fd": 1}
                params["avatar_file_name"] = sources[1].file_name
            types = dict(sources[0].types)
            types.update(plain(schema.pop("types", None) or {}))
            params.update(schema)
            params["types"] = types or None
            notify = (lambda _m, p: progress(p)) if progress else None
            result = self._call("runner.add_table", params, fds=[s.fd for s in sources],
                                timeout=self._manager.wait_timeout, on_notification=notify)
            failed = False
        finally:
            errors = []
            for s in sources:
                try:
                    s.finish(self._manager.timeout, failed)
                except Exception as e:  # noqa: PERF203 - each source is finished
                    errors.append(e)
            if errors and not failed:
                raise errors[0]
        self._status["tables"] = result.get("tables", self.tables)
        return result

    def upload_file(self, table_name: str, data: Any, avatar_data: Any = None) -> Tuple[str, Optional[str]]:
        """Uploads a table's data (and avatars) again, keeping its schema; returns the object
        names ``(file, avatar_file)`` as the published client does."""
        result = self._add_table(table_name, data, avatar_data, None, {})
        upload = result.get("upload") or {}
        return str(upload.get("file", "")), upload.get("avatar_file")

    def advise_parameters(self, table_name: Optional[str] = None) -> None:
        """Asks the server for parameters (an advice job) and applies them, for one table or
        (None) every table. Waits for the advice in the daemon, up to the Manager's
        wait_timeout."""
        timeout_s = self._manager.wait_timeout
        result = self._call("runner.advise_parameters", {"table_name": table_name, "timeout_s": timeout_s},
                            timeout=self._manager._long_timeout(timeout_s))
        self._warn(result)

    def add_link(self, parent_table_name: str, parent_field: str, child_table_name: str, child_field: str,
                 method: Union[LinkMethod, str] = LinkMethod.LINEAR_SUM_ASSIGNMENT) -> None:
        """Links a parent table's key to a child table's field."""
        self._update(self._call("runner.add_link", {
            "parent_table_name": parent_table_name, "parent_field": parent_field,
            "child_table_name": child_table_name, "child_field": child_field, "method": method}))

    def set_parameters(
        self,
        table_name: str,
        k: Optional[int] = None,
        ncp: Optional[int] = None,
        use_categorical_reduction: Optional[bool] = None,
        column_weights: Optional[Dict[str, float]] = None,
        exclude_variable_names: Optional[List[str]] = None,
        exclude_replacement_strategy: Any = None,
        exclude_variable_method: Any = None,
        imputation_method: Any = None,
        imputation_k: Optional[int] = None,
        imputation_training_fraction: Optional[float] = None,
        imputation_return_data_imputed: Optional[bool] = None,
        open_dp_epsilon: Optional[float] = None,
        fast_dp_epsilon: Optional[float] = None,
        time_series_nf: Optional[int] = None,
        time_series_projection_type: Any = None,
        time_series_nb_points: Optional[int] = None,
        time_series_method: Any = None,
        known_variables: Optional[List[str]] = None,
        target: Optional[str] = None,
        quantile_threshold: Optional[int] = None,
        data_augmentation_strategy: Any = None,
        data_augmentation_target_column: Optional[str] = None,
        data_augmentation_should_anonymize_original_table: Optional[bool] = None,
        use_excluded_variables_in_metrics: bool = False,
        *,
        processors: Optional[List[Any]] = None,
        pseudonymized_columns: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Sets a table's avatarization and metrics parameters, replacing any set before.

        The daemon checks them as the published client does (k or an epsilon, not both; a
        warning for k = 2 ...); its warnings are issued as UserWarning. ``processors`` and
        ``pseudonymized_columns`` are not served (NotImplementedError when given).
        """
        if processors is not None or pseudonymized_columns is not None:
            raise NotImplementedError("avatard does not serve processors or pseudonymized_columns")
        params = {name: value for name, value in locals().items()
                  if name not in ("self", "processors", "pseudonymized_columns")}
        if not params["use_excluded_variables_in_metrics"]:
            params["use_excluded_variables_in_metrics"] = None
        self._warn(self._call("runner.set_parameters", params))

    def update_parameters(self, table_name: str, **kwargs: Any) -> None:
        """Changes the given parameters of a table, keeping the others (None removes one)."""
        self._warn(self._call("runner.update_parameters", {"table_name": table_name, **kwargs},
                              keep_none=kwargs.keys()))

    def delete_parameters(self, table_name: str, parameters_names: Optional[List[str]] = None) -> None:
        """Deletes the named parameters of a table, or all of them (None)."""
        self._update(self._call("runner.delete_parameters",
                                {"table_name": table_name, "parameters_names": parameters_names},
                                keep_none=("parameters_names",)))

    def delete_link(self, parent_table_name: str, child_table_name: str) -> None:
        """Deletes the link between two tables."""
        self._update(self._call("runner.delete_link", {"parent_table_name": parent_table_name,
                                                       "child_table_name": child_table_name}))

    def delete_table(self, table_name: str) -> None:
        """Deletes a table from the runner (with its links and parameters)."""
        result = self._call("runner.delete_table", {"table_name": table_name})
        self._update(result)
        if isinstance(result, dict) and "tables" in result:
            self._status["tables"] = result["tables"]

    def get_yaml(self, path: Optional[str] = None) -> str:
        """The runner's resource YAML; also written to ``path`` when given."""
        text = self._call("runner.export_yaml")["yaml"]
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def from_yaml(self, yaml_path: str) -> None:
        """Replaces the runner's configuration with a resource YAML file's.

        The daemon makes a new runner from the file (the file is read here, with the
        caller's rights) and this object moves to it; the old runner is closed. Table data is
        not part of the YAML: upload it with :meth:`upload_file` before running."""
        new = self._manager.create_runner_from_yaml(yaml_path, self.display_name or "runner")
        old = self.runner_id
        self.runner_id = new.runner_id
        self._status = new._status
        try:
            self._manager.call("runner.close", {"runner_id": old})
        except NotFoundError:
            pass

    def get_parameters(self, table_name: str) -> Dict[str, Dict[str, Any]]:
        """The table's parameters in the runner's YAML, by document: ``{"Avatarization": {...},
        "Privacy metrics": {...}, "Signal metrics": {...}}`` (those that are set)."""
        out: Dict[str, Dict[str, Any]] = {}
        for doc in load_all(self.get_yaml()):
            if not isinstance(doc, dict):
                continue
            for kind, title in _PARAMETER_DOCS:
                if doc.get("kind") != kind:
                    continue
                for key, value in (doc.get("spec") or {}).items():
                    if isinstance(value, dict) and isinstance(value.get(table_name), dict):
                        out.setdefault(title, {}).update(value[table_name])
        return out

    def print_parameters(self, table_name: Optional[str] = None) -> None:
        """Prints the parameters of a table, or of every table (None)."""
        names = self.tables if table_name is None else [table_name]
        if table_name is not None and table_name not in self.status().get("tables", []):
            raise ValueError(f"Expected table '{table_name}' to be created. Try running it first.")
        for name in names:
            try:
                params = self.get_parameters(name)
            except ValueError:
                print(self.get_yaml())  # noqa: T201 - a YAML this reader cannot read: as text
                return
            for _, title in _PARAMETER_DOCS:
                if title in params:
                    print(f"--- {title} parameters for {name}: ---")  # noqa: T201
                    print(params[title])  # noqa: T201
                else:
                    print(f"--- No {title.lower()} parameters set for {name} ---")  # noqa: T201
                print("\n")  # noqa: T201

    # -- jobs ----------------------------------------------------------------------------------

    def run(self, jobs_to_run: Sequence[Union[JobKind, str]] = JOB_EXECUTION_ORDER,
            ignore_warnings: bool = False) -> None:
        """Sends the runner's YAML as a new set and creates the jobs (default: standard,
        signal_metrics, privacy_metrics, report; the PIA report comes with report). A re-run
        of a runner with results starts a new set; the daemon's warning about it is issued as
        a UserWarning unless ignore_warnings."""
        result = self._call("runner.run", {"jobs": [plain(j) for j in jobs_to_run],
                                           "ignore_warnings": ignore_warnings or None})
        if not ignore_warnings:
            self._warn(result)
        self._status["set_name"] = result.get("set_name")
        self._status["jobs"] = result.get("jobs", [])

    def status(self, refresh: bool = False) -> Dict[str, Any]:
        """The runner, its tables and jobs as the daemon last saw them (refresh: ask upstream)."""
        status = self._call("runner.get_status", {"refresh": refresh or None})
        self._update(status)
        return status

    def _job(self, job_name: Any, refresh: bool) -> Dict[str, Any]:
        """The runner's job with that parameters name, kind or server name."""
        want = _pname(job_name)
        jobs = self.status(refresh).get("jobs") or []
        for key in ("parameters_name", "kind", "name"):
            for j in jobs:
                if j.get(key) == want or (want == "advice_parameters" and j.get(key) == "advice"):
                    return j
        raise NotFoundError(f"Expected job '{plain(job_name)}' to be created. Try running it first.",
                            {"name": "not_found", "retryable": False}, NotFoundError.code)

    def get_job(self, job_name: Union[JobKind, str]) -> JobResponse:
        """A job of this runner (by kind, e.g. ``JobKind.standard``, or parameters name)."""
        j = dict(self._job(job_name, True))
        j.setdefault("set_name", self.set_name)
        j.setdefault("display_name", self.display_name)
        return job_response(j)

    def get_status(self, job_name: Union[JobKind, str]) -> str:
        """The status of a job of this runner (``finished``, ``pending``, ``error`` ...)."""
        return str(self.get_job(job_name).status)

    def wait(self, jobs: Optional[Sequence[Any]] = None, timeout_s: Optional[float] = None) -> Dict[str, Any]:
        """Waits in the daemon until the jobs (default: all) are done; returns its reply
        (``done``, ``timed_out``, ``jobs``). Raises :class:`~avatard.errors.JobFailedError`
        when one ended in error."""
        timeout_s = self._manager.wait_timeout if timeout_s is None else timeout_s
        result = self._call("runner.wait", {
            "jobs": [_pname(j) for j in jobs] if jobs else None, "timeout_s": timeout_s},
            timeout=self._manager._long_timeout(timeout_s))
        self._status["jobs"] = result.get("jobs", self._status.get("jobs"))
        for j in result.get("jobs") or []:
            if j.get("status") in ERROR_STATUSES and (not jobs or j.get("parameters_name") in
                                                     [_pname(x) for x in jobs]):
                raise JobFailedError(
                    f"Job {j.get('parameters_name')} failed with exception: {j.get('exception')}",
                    {"name": "job_failed", "retryable": False, "job": j.get("name"),
                     "status": j.get("status"), "exception": j.get("exception")}, JobFailedError.code)
        return result

    def watch(self, jobs: Optional[Sequence[Any]] = None, timeout_s: Optional[float] = None) -> Stream:
        """Follows the jobs as an iterator of ``runner.progress`` notifications (each with
        ``jobs``, those that changed); it ends with the daemon's reply (its ``result``)."""
        timeout_s = self._manager.wait_timeout if timeout_s is None else timeout_s
        params: Dict[str, Any] = {"runner_id": self.runner_id, "timeout_s": timeout_s}
        if jobs:
            params["jobs"] = [_pname(j) for j in jobs]
        return self._manager.stream("runner.wait", params, timeout=self._manager._long_timeout(timeout_s))

    def _ensure_done(self, pnames: Sequence[str]) -> None:
        """Waits for the named jobs unless they are known to be done."""
        jobs = {j.get("parameters_name"): j for j in self._status.get("jobs") or []}
        if all(jobs.get(p, {}).get("done") and jobs[p].get("status") not in ERROR_STATUSES for p in pnames):
            return
        result = self.wait(list(pnames))
        if result.get("timed_out"):
            raise DaemonTimeoutError(f"the jobs {', '.join(pnames)} were not done in time",
                                     {"name": "timeout", "retryable": True}, DaemonTimeoutError.code)

    def delete(self, job_names: Optional[Union[Any, List[Any]]] = None) -> BulkDeleteResponse:
        """Deletes the runner's jobs upstream: all of them (None), or those named."""
        if job_names is not None and not isinstance(job_names, list):
            job_names = [job_names]
        jobs = [_pname(j) for j in job_names] if job_names is not None else None
        return bulk_delete_response(self._call("runner.delete", {"jobs": jobs}))

    def kill(self) -> None:
        """Does nothing, as in the published client."""
        return None

    def close(self) -> None:
        """Makes the daemon forget this runner (its jobs upstream stay)."""
        self._manager.call("runner.close", {"runner_id": self.runner_id})

    # -- results -------------------------------------------------------------------------------

    def list_results(self) -> List[Dict[str, Any]]:
        """The result files of the runner's finished jobs: each job with its ``files``
        (``result``, ``file_name``, ``table``)."""
        return list(self._call("runner.list_results").get("jobs") or [])

    def download(self, result: Union[Results, str], table: Optional[str] = None, index: int = 0, *,
                 path: Optional[str] = None, dataframe: Optional[bool] = None) -> Any:
        """One result file: into ``path`` (created with the caller's rights; returns the
        daemon's reply) or into memory through a pipe, parsed as :func:`avatard.data.parse_result`
        does (``dataframe`` chooses DataFrame or rows for CSV)."""
        result = plain(result)
        params = {"result": result, "table": table, "index": index or None, "fd": {"fd": 0}}
        timeout = self._manager.wait_timeout
        if path is not None:
            fd = open_sink(path)
            try:
                return self._call("runner.download", params, fds=[fd], timeout=timeout)
            finally:
                os.close(fd)
        sink = PipeSink()
        try:
            reply = self._call("runner.download", params, fds=[sink.fd], timeout=timeout)
        except BaseException:
            sink.abandon()
            raise
        blob = sink.data(self._manager.timeout)
        return parse_result(result, str(reply.get("file_name", "")), blob, dataframe)

    def _files(self, pname: str, result: str, table: Optional[str]) -> List[Dict[str, Any]]:
        """The files of one result of a job (for one table), in the daemon's order."""
        key = {"projections": "avatar_projections", "report_pia": "report", "metadata": "run_metadata"}.get(
            result, result)
        for j in self.list_results():
            if j.get("parameters_name") == pname:
                return [f for f in j.get("files") or []
                        if f.get("result") == key and (table is None or f.get("table") in (table, None))]
        return []

    def get_specific_result_urls(self, job_name: str, result: Union[Results, str] = Results.SHUFFLED) -> List[str]:
        """The files of one result of a job. The daemon keeps storage URLs to itself: these are
        the file names, which :meth:`download` fetches."""
        pname = _pname(job_name)
        self._ensure_done([pname])
        return [str(f.get("file_name")) for f in self._files(pname, str(plain(result)), None)]

    def get_specific_result(self, table_name: str, job_name: Union[JobKind, str],
                            result: Union[Results, str] = Results.SHUFFLED, *,
                            dataframe: Optional[bool] = None) -> Any:
        """One result of a job for a table: a DataFrame for tables (see ``dataframe``), lists
        and dicts for metrics and metadata, ``{plot kind: [HTML, ...]}`` for figures."""
        result = str(plain(result))
        pname = _pname(job_name)
        if result == "report" and pname == "report_pia":
            result = "report_pia"
        self._ensure_done([pname])
        if result == "figures":
            return self._figures(table_name)
        table = table_name if result in PER_TABLE else None
        return self.download(result, table, dataframe=dataframe)

    def _figures(self, table_name: str) -> Dict[str, List[str]]:
        """The table's figures by plot kind (from their file names, ``T.KIND.html``)."""
        out: Dict[str, List[str]] = {}
        for i, f in enumerate(self._files("standard", "figures", table_name)):
            name = str(f.get("file_name", ""))
            kind = name[len(table_name) + 1:] if name.startswith(table_name + ".") else name
            kind = kind[:-5] if kind.endswith(".html") else kind
            out.setdefault(kind, []).append(self.download("figures", table_name, i))
        return out

    def get_all_results(self) -> Dict[str, Dict[str, Dict[str, Any]]]:
        """Every stored result of every finished job on every table:
        ``{job: {table: {result: data}}}``."""
        self._ensure_done([j.get("parameters_name") for j in self._status.get("jobs") or []
                           if j.get("parameters_name") != "advice_parameters"])
        out: Dict[str, Dict[str, Dict[str, Any]]] = {}
        for job in self.list_results():
            pname = str(job.get("parameters_name"))
            kinds = {f.get("result") for f in job.get("files") or []}
            for table in self.tables:
                for r in RESULTS_TO_STORE:
                    # run_metadata is in every job's files, but the daemon serves the standard one's
                    if r.value not in kinds or RESULT_JOB[r.value] != pname:
                        continue
                    if r is Results.FIGURES:
                        data: Any = self._figures(table)
                    else:
                        data = self.download(r.value, table if r.value in PER_TABLE else None)
                    out.setdefault(pname, {}).setdefault(table, {})[r.value] = data
        return out

    def download_report(self, path: Optional[str] = None, *,
                        report_type: Union[ReportType, str] = ReportType.BASIC) -> List[str]:
        """Writes the report into ``path`` (default: its own file name here). The PIA report
        has one file per table: with several, ``path``'s name gets an index prefix
        (``dir/0_report.docx``). Returns the paths written."""
        pia = str(plain(report_type)) == "pia"
        pname = "report_pia" if pia else "report"
        self._ensure_done([pname])
        files = self._files(pname, "report", None)
        if not files:
            raise NotFoundError(f"Job {pname} has no report", {"name": "not_found"}, NotFoundError.code)
        written = []
        for i, f in enumerate(files):
            if path is None:
                out = str(f.get("file_name"))
            elif len(files) > 1:
                out = os.path.join(os.path.dirname(path), f"{i}_{os.path.basename(path)}")
            else:
                out = path
            if pia:
                self.download("report_pia", f.get("table"), path=out)
            else:
                self.download("report", None, i, path=out)
            written.append(out)
        return written

    def shuffled(self, table_name: str) -> Any:
        """The avatars of a table, shuffled (a DataFrame)."""
        return self.get_specific_result(table_name, JobKind.standard, Results.SHUFFLED)

    def sensitive_unshuffled(self, table_name: str) -> Any:
        """The avatars in the original rows' order (sensitive: use with care)."""
        return self.get_specific_result(table_name, JobKind.standard, Results.UNSHUFFLED)

    def privacy_metrics(self, table_name: str) -> List[Dict[str, Any]]:
        """The privacy metrics of a table (a list of dicts)."""
        return self.get_specific_result(table_name, JobKind.privacy_metrics, Results.PRIVACY_METRICS)

    def signal_metrics(self, table_name: str) -> List[Dict[str, Any]]:
        """The signal metrics of a table (a list of dicts)."""
        return self.get_specific_result(table_name, JobKind.signal_metrics, Results.SIGNAL_METRICS)

    def projections(self, table_name: str) -> Tuple[Any, Any]:
        """The original and the avatar projections of a table (two DataFrames)."""
        return (self.get_specific_result(table_name, JobKind.standard, Results.PROJECTIONS_ORIGINAL),
                self.get_specific_result(table_name, JobKind.standard, Results.PROJECTIONS_AVATARS))

    def render_plot(self, table_name: str, plot_kind: Union[PlotKind, str], open_in_browser: bool = False) -> List[str]:
        """The HTML of a table's plots of one kind. With open_in_browser they are written to
        ``TABLE_KIND_N.html`` here and opened; in IPython they are displayed. Returns the HTML."""
        kind = str(plain(plot_kind))
        figures = self.get_specific_result(table_name, JobKind.standard, Results.FIGURES)
        if kind not in figures:
            raise ValueError(f"No {kind} found for table '{table_name}'.")
        plots = figures[kind]
        for idx, html in enumerate(plots):
            if open_in_browser:
                import webbrowser

                name = os.path.abspath(f"{table_name}_{kind}_{idx}.html")
                with open(name, "w", encoding="utf-8") as f:
                    f.write(html)
                webbrowser.open(f"file://{name}")
            else:
                try:
                    from IPython.display import HTML, display  # type: ignore

                    display(HTML(html))
                except ImportError:
                    pass
        return plots
