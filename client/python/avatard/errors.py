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
    "ERRORS_BY_CODE",
    "error_from_reply",
]


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


class DaemonUnavailableError(AvatardError, ConnectionError):
    """The socket could not be reached, or the daemon closed the connection mid-call."""

    default_name = "daemon_unavailable"

    def __init__(self, message: str = "", data: Optional[Mapping[str, Any]] = None,
                 code: Optional[int] = None) -> None:
        AvatardError.__init__(self, message, data, code)
        self.retryable = True


class CallTimeoutError(AvatardError, TimeoutError):
    """No reply came before the call's deadline (the client's ``timeout``)."""

    default_name = "call_timeout"


class ProtocolError(AvatardError):
    """The daemon sent something this client cannot read (not JSON, an oversize line)."""

    default_name = "protocol_error"


class ParseError(AvatardError):
    """-32700: the daemon could not parse the request."""

    code = -32700
    default_name = "parse_error"


class InvalidRequestError(AvatardError):
    """-32600: not a valid JSON-RPC request."""

    code = -32600
    default_name = "invalid_request"


class MethodNotFoundError(AvatardError, NotImplementedError):
    """-32601: the daemon has no such method (``data["method"]``)."""

    code = -32601
    default_name = "method_not_found"


class InvalidParamsError(AvatardError, ValueError):
    """-32602: the params do not match the method (``data["param"]``, ``data["detail"]``)."""

    code = -32602
    default_name = "invalid_params"


class InternalError(AvatardError):
    """-32603: a daemon bug or out of memory."""

    code = -32603
    default_name = "internal_error"


class UpstreamUnreachableError(AvatardError, ConnectionError):
    """-32000: network error, timeout or open circuit to the Avatar server."""

    code = -32000
    default_name = "upstream_unreachable"


class UpstreamHTTPError(AvatardError):
    """-32001: the Avatar server answered an HTTP error (``data["status"]``)."""

    code = -32001
    default_name = "upstream_http_error"


class CredentialRejectedError(AvatardError, PermissionError):
    """-32002: the server refused the daemon's API key or token."""

    code = -32002
    default_name = "credential_rejected"


class IncompatibleError(AvatardError, DeprecationWarning):
    """-32003: the server says this client is incompatible or unknown.

    A ``DeprecationWarning`` too, as the published client raises one in this case.
    """

    code = -32003
    default_name = "incompatible"


class PermissionDeniedError(AvatardError, PermissionError):
    """-32004: the caller's role does not allow the method (``data["required_role"]``)."""

    code = -32004
    default_name = "permission_denied"


class NotFoundError(AvatardError, LookupError, ValueError):
    """-32005: no such job, run, runner or result (a ``ValueError`` as in the published client)."""

    code = -32005
    default_name = "not_found"


class AmbiguousError(AvatardError, ValueError):
    """-32006: several candidates (``data["candidates"]``: each run and the call to make)."""

    code = -32006
    default_name = "ambiguous"


class RateLimitedError(AvatardError):
    """-32007: the server kept answering 429 (``data["retry_after_ms"]``)."""

    code = -32007
    default_name = "rate_limited"


class OverloadedError(AvatardError):
    """-32008: a daemon limit was hit (connections, calls in flight)."""

    code = -32008
    default_name = "overloaded"


class ConflictError(AvatardError, ValueError):
    """-32009: the call contradicts the daemon's state (e.g. a login while a key is in use)."""

    code = -32009
    default_name = "conflict"


class InvalidStateError(AvatardError):
    """-32010: the object is not in a state that allows the call."""

    code = -32010
    default_name = "invalid_state"


class DaemonTimeoutError(AvatardError, TimeoutError):
    """-32011: a deadline passed in the daemon before the work completed."""

    code = -32011
    default_name = "timeout"


class NotAuthenticatedError(AvatardError):
    """-32012: the daemon holds no credential."""

    code = -32012
    default_name = "not_authenticated"


class JobFailedError(AvatardError, ValueError):
    """-32013: an upstream job ended in error (``data["job"]``, ``status``, ``exception``)."""

    code = -32013
    default_name = "job_failed"


class StorageError(AvatardError):
    """-32014: the S3 storage endpoint refused or failed (``data["status"]``, ``code``)."""

    code = -32014
    default_name = "storage_error"


class DescriptorIOError(AvatardError, OSError):
    """-32015: reading or writing a passed descriptor failed."""

    code = -32015
    default_name = "io_error"


class ShuttingDownError(AvatardError):
    """-32016: the daemon is stopping."""

    code = -32016
    default_name = "shutting_down"


class UpstreamBadResponseError(AvatardError):
    """-32017: the server answered 2xx with a body the daemon cannot use."""

    code = -32017
    default_name = "upstream_bad_response"


ERRORS_BY_CODE: Dict[int, Type[AvatardError]] = {
    cls.code: cls
    for cls in (
        ParseError, InvalidRequestError, MethodNotFoundError, InvalidParamsError, InternalError,
        UpstreamUnreachableError, UpstreamHTTPError, CredentialRejectedError, IncompatibleError,
        PermissionDeniedError, NotFoundError, AmbiguousError, RateLimitedError, OverloadedError,
        ConflictError, InvalidStateError, DaemonTimeoutError, NotAuthenticatedError,
        JobFailedError, StorageError, DescriptorIOError, ShuttingDownError,
        UpstreamBadResponseError,
    )
    if cls.code is not None
}


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
