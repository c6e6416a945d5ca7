"""``Manager``: the published Avatar client's Manager, served by avatard over its socket.

Code written for the published client switches with its import::

    from avatard import Manager        # was: from avatars.manager import Manager
    manager = Manager()                # base_url and api_key go: the daemon holds both
    runner = manager.create_runner("patients")

Every operation the daemon serves keeps its name, argument names, defaults and return shape;
what the published client returns as pydantic models comes back as light objects with the
same attributes (:class:`~avatard.models.JobResponse`, :class:`~avatard.models.BulkDeleteResponse`).
Errors are the classes of :mod:`avatard.errors`.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union
from uuid import UUID

from . import transport
from .data import open_source
from .errors import IncompatibleError, NotAuthenticatedError
from .models import (
    BulkDeleteResponse,
    DataRecipient,
    DataSubject,
    DataType,
    JobResponse,
    ReportLanguage,
    SensitivityLevel,
    bulk_delete_response,
    job_response,
    plain,
)
from .runner import Runner

__all__ = ["Manager"]

#: Seconds a call may take unless the Manager is told otherwise.
DEFAULT_TIMEOUT = 60.0

#: Seconds the daemon may follow jobs (runner.wait, advice) or move a table or result.
DEFAULT_WAIT_TIMEOUT = 3600.0


def _params(**kwargs: Any) -> Dict[str, Any]:
    """Params for a call: enum members as values, and the ``None`` ones left out (the daemon's
    defaults apply)."""
    return {k: plain(v) for k, v in kwargs.items() if v is not None}


class Manager:
    """The entry point: health, jobs, runs by name, deletion, runners, and the login flows.

    Args:
        base_url: accepted for compatibility and ignored: the daemon's configuration names
            the Avatar server.
        api_client, config: accepted for compatibility and ignored, as ``base_url``.
        api_key: refused with a warning and ignored: the daemon holds the credential, and a
            key has no business in the caller's process.
        should_verify_compatibility: when true, the Manager asks the daemon for the server's
            compatibility answer at the first call and raises
            :class:`~avatard.errors.IncompatibleError` if it is not compatible.
        socket: the daemon's socket (default ``$AVATARD_SOCKET``, else
            ``/run/avatard/avatard.sock``).
        timeout: seconds every call may take (the reply must arrive by then).
        wait_timeout: seconds the long calls may take: following jobs until they are done,
            asking for advice, uploading a table, downloading a result.

    The Manager is thread-safe: each thread talks over its own connection, so calls from
    several threads run side by side in the daemon.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        *,
        api_client: Any = None,
        api_key: Optional[str] = None,
        config: Any = None,
        should_verify_compatibility: Optional[bool] = None,
        socket: Optional[str] = None,
        timeout: Optional[float] = DEFAULT_TIMEOUT,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    ) -> None:
        if api_key is not None:
            warnings.warn(
                "avatard holds the Avatar credential: the api_key given to Manager() is ignored "
                "(remove it from the code)", UserWarning, stacklevel=2)
        self.base_url = base_url
        self.socket_path = socket or transport.default_socket_path()
        self.timeout = timeout
        self.wait_timeout = wait_timeout
        self._verify_compatibility = bool(should_verify_compatibility)
        self._local = threading.local()
        self._conns: "weakref.WeakSet[transport.Connection]" = weakref.WeakSet()
        self._conns_lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------------

    def _connection(self) -> transport.Connection:
        """This thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = transport.Connection(self.socket_path)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.add(conn)
        return conn

    def call(self, method: str, params: Any = None, *, fds: Sequence[int] = (),
             timeout: Optional[float] = None, on_notification: Any = None) -> Any:
        """Calls any daemon method (``avatarctl methods`` lists them) and returns its result.

        ``timeout`` defaults to the Manager's; ``fds`` are sent with the request (see
        :meth:`avatard.transport.Connection.call`)."""
        if self._verify_compatibility:
            self._verify_compatibility = False
            self._check_compatible()
        return self._connection().call(method, params, fds=fds,
                                       timeout=self.timeout if timeout is None else timeout,
                                       on_notification=on_notification)

    def stream(self, method: str, params: Any = None, *, timeout: Optional[float] = None) -> transport.Stream:
        """Starts a call whose notifications are read as an iterator, on a connection of its own."""
        conn = transport.Connection(self.socket_path)
        return conn.stream(method, params, timeout=self.wait_timeout if timeout is None else timeout,
                           close_at_end=True)

    def _long_timeout(self, daemon_timeout_s: Optional[float] = None) -> Optional[float]:
        """The client deadline of a call the daemon may work on for daemon_timeout_s."""
        base = self.wait_timeout if daemon_timeout_s is None else daemon_timeout_s
        return base + (self.timeout or DEFAULT_TIMEOUT)

    def _check_compatible(self) -> None:
        """Asks the server's compatibility answer now; raises IncompatibleError unless compatible."""
        compat = self.verify_compatibility(refresh=True)
        if compat.get("status") in ("incompatible", "unknown"):
            raise IncompatibleError(
                "Client is not compatible with the server.\n"
                f"Server message: {compat.get('message')}.\n"
                f"Most recent compatible client version: {compat.get('most_recent_compatible_client')}.",
                {"name": "incompatible", "retryable": False, **compat}, IncompatibleError.code)

    def close(self) -> None:
        """Closes every connection of this Manager (a later call connects again)."""
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            c.close()

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the published Manager's operations ----------------------------------------------------

    def authenticate(
        self, username: Optional[str] = None, password: Optional[str] = None,
        should_verify_compatibility: Optional[bool] = None,
    ) -> None:
        """Makes sure the daemon can call the Avatar server.

        Without a username and password (the usual case) nothing is sent upstream: the daemon
        uses the credential it holds, and :class:`~avatard.errors.NotAuthenticatedError` says
        when it holds none. With them, it is the deprecated username/password login, done by
        the daemon (admin role); refused with :class:`~avatard.errors.ConflictError` (a
        ``ValueError``, as in the published client) while the daemon uses an API key.

        should_verify_compatibility: True asks the server's compatibility answer first.
        """
        if (username is None) != (password is None):
            raise ValueError("authenticate() takes a username and a password, or neither")
        if should_verify_compatibility:
            self._check_compatible()
        if username is None:
            status = self.call("daemon.status")
            cred = (status.get("upstream") or {}).get("credential") or {}
            if cred.get("kind", "none") == "none":
                raise NotAuthenticatedError(
                    "avatard holds no credential: give it an API key (avatard(8), "
                    "upstream.api_key_file) or log in with authenticate(username, password)",
                    {"name": "not_authenticated", "retryable": False}, NotAuthenticatedError.code)
            return None
        result = self.call("manager.authenticate", _params(
            username=username, password=password,
            should_verify_compatibility=should_verify_compatibility))
        warning = result.get("warning") if isinstance(result, dict) else None
        if warning:
            warnings.warn(warning, DeprecationWarning, stacklevel=2)
        return None

    def forgotten_password(self, email: str) -> None:
        """Asks the server to send a password reset email."""
        self.call("manager.forgotten_password", {"email": email})

    def reset_password(self, email: str, new_password: str, new_password_repeated: str,
                       token: Union[str, UUID]) -> None:
        """Resets a password with the token of the reset email."""
        self.call("manager.reset_password", {
            "email": email, "new_password": new_password,
            "new_password_repeated": new_password_repeated, "token": str(UUID(str(token))),
        })

    def create_runner(
        self,
        set_name: str,
        seed: Optional[int] = None,
        max_distribution_plots: Optional[int] = None,
        pia_data_recipient: Union[DataRecipient, str] = DataRecipient.UNKNOWN,
        pia_data_type: Union[DataType, str] = DataType.UNKNOWN,
        pia_data_subject: Union[DataSubject, str] = DataSubject.UNKNOWN,
        pia_sensitivity_level: Union[SensitivityLevel, str] = SensitivityLevel.UNDEFINED,
        report_language: Union[ReportLanguage, str] = ReportLanguage.EN,
    ) -> Runner:
        """Creates a runner, held by the daemon (it survives this process and daemon restarts)."""
        status = self.call("manager.create_runner", _params(
            set_name=set_name, seed=seed, max_distribution_plots=max_distribution_plots,
            pia_data_recipient=pia_data_recipient, pia_data_type=pia_data_type,
            pia_data_subject=pia_data_subject, pia_sensitivity_level=pia_sensitivity_level,
            report_language=report_language))
        return Runner(self, status)

    def create_runner_from_id(self, set_name: Union[str, UUID]) -> Runner:
        """A runner loaded from an existing set (its YAML, its jobs and their results).

        Raises TypeError for a set_name that is neither str nor UUID, ValueError for a string
        that is not a UUID."""
        if not isinstance(set_name, (str, UUID)):
            raise TypeError(f"set_name must be a str or UUID, got {type(set_name).__name__}")
        try:
            uuid = str(UUID(str(set_name)))
        except ValueError:
            raise ValueError(
                f"Invalid set_name format: '{set_name}'. "
                "Expected a valid UUID string (e.g., 'a1b2c3d4-e5f6-7890-abcd-ef1234567890')") from None
        return Runner(self, self.call("manager.create_runner_from_id", {"set_name": uuid}))

    def get_last_results(self, count: int = 1) -> List[Dict[str, Any]]:
        """The results (file URLs by kind) of the ``count`` most recent jobs."""
        result = self.call("manager.get_last_results", {"count": count})
        return [dict(e.get("results") or {}) for e in result.get("results") or []]

    def get_last_jobs(self, count: int = 1) -> Dict[str, JobResponse]:
        """The ``count`` most recent jobs, by name."""
        result = self.call("manager.get_last_jobs", {"count": count})
        return {name: job_response(job) for name, job in (result.get("jobs") or {}).items()}

    def get_health(self) -> Dict[str, str]:
        """The Avatar server's health, as it answered."""
        result = dict(self.call("manager.get_health"))
        result.pop("stale", None)
        result.pop("age_s", None)
        return result

    def find_ids_by_name(self, set_name: str) -> List[Tuple[str, List[JobResponse]]]:
        """The runs with this display name (exact), newest first: ``(set_name UUID, jobs)``."""
        result = self.call("manager.find_ids_by_name", {"set_name": set_name})
        return [(str(run.get("set_name")), [job_response(j) for j in run.get("jobs") or []])
                for run in result.get("runs") or []]

    def create_runner_from_name(self, display_name: str) -> Runner:
        """A runner loaded from the most recent run with this display name.

        Raises :class:`~avatard.errors.NotFoundError` (a ValueError) when there is none."""
        return Runner(self, self.call("manager.create_runner_from_name", {"display_name": display_name}))

    def create_runner_from_yaml(self, yaml_path: str, set_name: str) -> Runner:
        """A runner configured by a resource YAML file (read here with the caller's rights and
        passed as a descriptor); its display name gets a ``-vN`` suffix."""
        src = open_source(yaml_path, set_name)
        try:
            status = self.call("manager.create_runner_from_yaml",
                               {"set_name": set_name, "fd": {"fd": 0}}, fds=[src.fd])
        finally:
            src.finish(None, True)
        return Runner(self, status)

    def delete_job(self, name: str) -> BulkDeleteResponse:
        """Deletes all jobs of the one run with this display name.

        Raises :class:`~avatard.errors.NotFoundError` when no run has it and
        :class:`~avatard.errors.AmbiguousError` (``data["candidates"]``) when several do,
        both ValueErrors as in the published client."""
        return bulk_delete_response(self.call("manager.delete_job", {"name": name}))

    def delete_job_by_id(self, id: Union[UUID, str]) -> BulkDeleteResponse:
        """Deletes all jobs of the run with this set_name UUID."""
        return bulk_delete_response(self.call("manager.delete_job_by_id", {"id": str(UUID(str(id)))}))

    def delete_jobs(self, job_names: List[str]) -> BulkDeleteResponse:
        """Deletes jobs by name (the daemon sends them in batches of at most 100)."""
        return bulk_delete_response(self.call("manager.delete_jobs", {"job_names": list(job_names)}))

    # -- more of the daemon --------------------------------------------------------------------

    def get_jobs(self, kind: Optional[Iterable[str]] = None, display_name: Optional[str] = None,
                 set_name: Optional[str] = None, limit: Optional[int] = None,
                 include_deleted: Optional[bool] = None) -> List[JobResponse]:
        """Jobs with the server's filters, newest first."""
        result = self.call("manager.get_jobs", _params(
            kind=list(kind) if kind is not None else None, display_name=display_name,
            set_name=set_name, limit=limit, include_deleted=include_deleted))
        return [job_response(j) for j in result.get("jobs") or []]

    def get_job(self, name: str) -> JobResponse:
        """One job by its name."""
        return job_response(self.call("manager.get_job", {"name": name}))

    def verify_compatibility(self, refresh: bool = False) -> Dict[str, Any]:
        """The server's compatibility answer for this daemon (``status``, ``message`` ...)."""
        return self._connection().call("manager.verify_compatibility", {"refresh": refresh},
                                       timeout=self.timeout)

    def watch_jobs(self, set_name: Optional[str] = None, runner_id: Optional[str] = None,
                   jobs: Optional[Sequence[str]] = None,
                   timeout_s: Optional[float] = None) -> transport.Stream:
        """Follows the jobs of a set: an iterator of ``jobs.changed`` notifications (each with
        ``jobs``, the jobs that changed) that ends when they are done or at timeout_s; its
        ``result`` is then the daemon's reply. Runs on a connection of its own."""
        timeout_s = self.wait_timeout if timeout_s is None else timeout_s
        return self.stream("manager.watch_jobs", _params(
            set_name=set_name, runner_id=runner_id, jobs=list(jobs) if jobs is not None else None,
            timeout_s=timeout_s), timeout=self._long_timeout(timeout_s))

    def runner(self, runner_id: str) -> Runner:
        """The Runner for a runner the daemon already holds (from another process, say)."""
        return Runner(self, self.call("runner.get_status", {"runner_id": runner_id}))

    def list_runners(self, all: bool = False) -> List[Runner]:
        """The caller's runners (everyone's with all=True, admin only)."""
        result = self.call("runner.list", {"all": all})
        return [Runner(self, s) for s in result.get("runners") or []]

    def daemon_status(self) -> Dict[str, Any]:
        """daemon.status: version, protocol version, limits, connections, counters."""
        return self.call("daemon.status")

    def ping(self, echo: Any = None) -> Any:
        """daemon.ping: answers ``echo`` (or "pong") at once."""
        return self.call("daemon.ping", None if echo is None else {"echo": echo})

