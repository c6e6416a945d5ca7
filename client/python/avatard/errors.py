"""Exceptions: one class per JSON-RPC error code of avatard, all under :class:`AvatardError`.

The daemon answers a failed call with a JSON-RPC error object ``{code, message, data}``;
``data`` always has ``name`` (a stable symbolic name) and ``retryable``, and more members
where they apply (``candidates`` of an ambiguous name, ``status`` of an upstream HTTP error,
``required_role`` of a denial ...). :func:`error_from_reply` turns that object into an
instance of the class registered for its code, with ``code``, ``message``, ``data``,
``name`` and ``retryable`` as attributes. proto/PROTOCOL.md lists the codes.

Some classes also derive from the built-in exception the published ``avatars`` client raises
in the same situation, so code written for it keeps catching them: a name that matches no
run or several runs, and a login while an API key is in use, are ``ValueError`` there; a
server that rejects the client is a ``DeprecationWarning``; deadlines are ``TimeoutError``.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type

__all__ = [
    "AvatardError",
    "DaemonUnavailableError",
    "CallTimeoutError",
    "ProtocolError",
    "ParseError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "InvalidParamsError",
    "InternalError",
    "UpstreamUnreachableError",
    "UpstreamHTTPError",
    "CredentialRejectedError",
    "IncompatibleError",
    "PermissionDeniedError",
    "NotFoundError",
    "AmbiguousError",
    "RateLimitedError",
    "OverloadedError",
    "ConflictError",
    "InvalidStateError",
    "DaemonTimeoutError",
    "NotAuthenticatedError",
    "JobFailedError",
    "StorageError",
    "DescriptorIOError",
    "ShuttingDownError",
    "UpstreamBadResponseError",
    "StateNotSavedError",
    "JobsLostError",
    "ERRORS_BY_CODE",
    "error_from_reply",
]


#: The class of each JSON-RPC error code; a subclass declared with ``code=`` registers itself.
ERRORS_BY_CODE: Dict[int, Type["AvatardError"]] = {}


class AvatardError(Exception):
    """Base class of every error this package raises for a call.

    Attributes:
        code: the JSON-RPC error code (``None`` for errors found on this side of the socket).
        message: the daemon's message.
        data: the error's ``data`` object as the daemon sent it (a dict, maybe empty).
        name: ``data["name"]``, the stable symbolic name to match on.
        retryable: whether the same call may succeed if simply repeated later.
    """

    code: Optional[int] = None
    default_name: str = "error"

    def __init_subclass__(cls, code: Optional[int] = None, default_name: Optional[str] = None,
                          **kwargs: Any) -> None:
        """A subclass names its code and default name in its class statement."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
            ERRORS_BY_CODE[code] = cls
        if default_name is not None:
            cls.default_name = default_name

    def __init__(self, message: str = "", data: Optional[Mapping[str, Any]] = None,
                 code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.data: Dict[str, Any] = dict(data or {})
        if code is not None:
            self.code = code
        self.name: str = str(self.data.get("name", self.default_name))
        self.retryable: bool = bool(self.data.get("retryable", False))

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        return f"{self.message} ({self.name}, {self.code})"


class DaemonUnavailableError(AvatardError, ConnectionError, default_name="daemon_unavailable"):
    """The socket could not be reached, or the daemon closed the connection mid-call."""

    def __init__(self, message: str = "", data: Optional[Mapping[str, Any]] = None,
                 code: Optional[int] = None) -> None:
        AvatardError.__init__(self, message, data, code)
        self.retryable = True


class CallTimeoutError(AvatardError, TimeoutError, default_name="call_timeout"):
    """No reply came before the call's deadline (the client's ``timeout``)."""


class ProtocolError(AvatardError, default_name="protocol_error"):
    """The daemon sent something this client cannot read (not JSON, an oversize line)."""


class ParseError(AvatardError, code=-32700, default_name="parse_error"):
    """-32700: the daemon could not parse the request."""


class InvalidRequestError(AvatardError, code=-32600, default_name="invalid_request"):
    """-32600: not a valid JSON-RPC request."""


class MethodNotFoundError(AvatardError, NotImplementedError,
                          code=-32601, default_name="method_not_found"):
    """-32601: the daemon has no such method (``data["method"]``)."""


class InvalidParamsError(AvatardError, ValueError, code=-32602, default_name="invalid_params"):
    """-32602: the params do not match the method (``data["param"]``, ``data["detail"]``)."""


class InternalError(AvatardError, code=-32603, default_name="internal_error"):
    """-32603: a daemon bug or out of memory."""


class UpstreamUnreachableError(AvatardError, ConnectionError,
                               code=-32000, default_name="upstream_unreachable"):
    """-32000: network error, timeout or open circuit to the Avatar server."""


class UpstreamHTTPError(AvatardError, code=-32001, default_name="upstream_http_error"):
    """-32001: the Avatar server answered an HTTP error (``data["status"]``)."""


class CredentialRejectedError(AvatardError, PermissionError,
                              code=-32002, default_name="credential_rejected"):
    """-32002: the server refused the daemon's API key or token."""


class IncompatibleError(AvatardError, DeprecationWarning, code=-32003, default_name="incompatible"):
    """-32003: the server says this client is incompatible or unknown.

    A ``DeprecationWarning`` too, as the published client raises one in this case.
    """


class PermissionDeniedError(AvatardError, PermissionError,
                            code=-32004, default_name="permission_denied"):
    """-32004: the caller's role does not allow the method (``data["required_role"]``)."""


class NotFoundError(AvatardError, LookupError, ValueError, code=-32005, default_name="not_found"):
    """-32005: no such job, run, runner or result (a ``ValueError`` as in the published client)."""


class AmbiguousError(AvatardError, ValueError, code=-32006, default_name="ambiguous"):
    """-32006: several candidates (``data["candidates"]``: each run and the call to make)."""


class RateLimitedError(AvatardError, code=-32007, default_name="rate_limited"):
    """-32007: the server kept answering 429 (``data["retry_after_ms"]``)."""


class OverloadedError(AvatardError, code=-32008, default_name="overloaded"):
    """-32008: a daemon limit was hit (connections, calls in flight)."""


class ConflictError(AvatardError, ValueError, code=-32009, default_name="conflict"):
    """-32009: the call contradicts the daemon's state (e.g. a login while a key is in use)."""


class InvalidStateError(AvatardError, code=-32010, default_name="invalid_state"):
    """-32010: the object is not in a state that allows the call."""


class DaemonTimeoutError(AvatardError, TimeoutError, code=-32011, default_name="timeout"):
    """-32011: a deadline passed in the daemon before the work completed."""


class NotAuthenticatedError(AvatardError, code=-32012, default_name="not_authenticated"):
    """-32012: the daemon holds no credential."""


class JobFailedError(AvatardError, ValueError, code=-32013, default_name="job_failed"):
    """-32013: an upstream job ended in error (``data["job"]``, ``status``, ``exception``)."""


class StorageError(AvatardError, code=-32014, default_name="storage_error"):
    """-32014: the S3 storage endpoint refused or failed (``data["status"]``, ``code``)."""


class DescriptorIOError(AvatardError, OSError, code=-32015, default_name="io_error"):
    """-32015: reading or writing a passed descriptor failed."""


class ShuttingDownError(AvatardError, code=-32016, default_name="shutting_down"):
    """-32016: the daemon is stopping."""


class UpstreamBadResponseError(AvatardError, code=-32017, default_name="upstream_bad_response"):
    """-32017: the server answered 2xx with a body the daemon cannot use."""


class StateNotSavedError(AvatardError, OSError, code=-32018, default_name="state_not_saved"):
    """-32018: the daemon could not write its state directory (``data["state_directory"]``,
    ``errno``, ``runner_id``, ``kept``); ``data["retryable"]`` says whether trying again may
    succeed (a full disk: yes, once there is room)."""


class JobsLostError(AvatardError, code=-32019, default_name="jobs_lost"):
    """-32019: jobs the call waited for are gone upstream (the server answered 404 for them,
    or their set was deleted): ``data["lost"]`` names them (``job``: the parameters name,
    ``job_name``), with ``runner_id`` or ``set_name``. Waiting again cannot help; running
    them again (``Runner.run``) can."""


def error_from_reply(error: Any) -> AvatardError:
    """The exception for a JSON-RPC error object (an unknown code gives :class:`AvatardError`)."""
    if not isinstance(error, dict):
        return ProtocolError(f"malformed error object: {error!r:.200}")
    code = error.get("code")
    message = str(error.get("message", ""))
    data = error.get("data")
    if not isinstance(data, dict):
        data = {} if data is None else {"value": data}
    cls = ERRORS_BY_CODE.get(code, AvatardError) if isinstance(code, int) else AvatardError
    return cls(message, data, code if isinstance(code, int) else None)
