"""JSON-RPC 2.0 over avatard's Unix socket: framing, descriptors, deadlines, notifications.

The wire contract is proto/PROTOCOL.md: one JSON text per line each way; descriptors travel as
``SCM_RIGHTS`` ancillary data with the first bytes of the request line that names them
(``{"fd": N}`` is the N-th descriptor of that message); notifications (no ``id``) of a call
arrive on its connection before its reply.

A :class:`Connection` carries one call at a time (a lock serializes callers), and every call
has a deadline: when it passes, the connection is closed (a late reply could otherwise be
taken for the next call's) and :class:`~avatard.errors.CallTimeoutError` is raised; the next
call connects again. A :class:`Stream` is one long call (``manager.watch_jobs``,
``runner.wait``) read as an iterator of its notifications, on a connection of its own.
"""

from __future__ import annotations

import errno
import json
import os
import socket as _socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

from .errors import (
    AvatardError,
    CallTimeoutError,
    DaemonUnavailableError,
    ProtocolError,
    error_from_reply,
)

__all__ = [
    "DEFAULT_SOCKET",
    "MAX_FDS_PER_MESSAGE",
    "Connection",
    "Stream",
    "default_socket_path",
]

#: Where avatard listens unless ``$AVATARD_SOCKET`` or the ``socket`` argument says otherwise.
DEFAULT_SOCKET = "/run/avatard/avatard.sock"

#: Descriptors one message may carry (PROTOCOL.md §4).
MAX_FDS_PER_MESSAGE = 8

#: The longest line accepted from the daemon. Replies are small except ``rpc.discover`` and
#: inline downloads (at most 512 KiB, base64); this bounds what a broken peer can make us buffer.
MAX_LINE_BYTES = 64 * 1024 * 1024

#: Bytes asked of the kernel per read.
_READ_CHUNK = 256 * 1024

Notification = Dict[str, Any]
NotificationCallback = Callable[[str, Dict[str, Any]], None]


def default_socket_path() -> str:
    """``$AVATARD_SOCKET`` when set and not empty, else :data:`DEFAULT_SOCKET`."""
    return os.environ.get("AVATARD_SOCKET") or DEFAULT_SOCKET


def _encode(obj: Any) -> bytes:
    """One compact JSON line (UTF-8, newline-terminated). NaN and infinities are refused."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


class _Deadline:
    """A point in monotonic time; ``None`` means no deadline."""

    def __init__(self, seconds: Optional[float]) -> None:
        self.at = None if seconds is None else time.monotonic() + max(0.0, float(seconds))

    def remaining(self) -> Optional[float]:
        """Seconds left (at least a millisecond, so a socket timeout of 0 never means non-blocking)."""
        if self.at is None:
            return None
        return max(0.001, self.at - time.monotonic())

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


class Connection:
    """One connection to avatard, carrying one call at a time.

    Args:
        path: the socket path (default :func:`default_socket_path`).
        connect_timeout: how long connecting may take (a full listen backlog makes it wait).
        max_line: the longest line accepted from the daemon, in bytes.

    Thread-safe: calls from several threads are serialized by a lock (a notification callback
    must not call on the same connection). For calls in parallel use one connection per
    thread (:class:`avatard.Manager` does).
    """

    def __init__(self, path: Optional[str] = None, *, connect_timeout: float = 10.0,
                 max_line: int = MAX_LINE_BYTES) -> None:
        self.path = path or default_socket_path()
        self.connect_timeout = connect_timeout
        self.max_line = max_line
        self._sock: Optional[_socket.socket] = None
        self._buf = bytearray()
        self._next_id = 1
        self._lock = threading.Lock()

    # -- connection ----------------------------------------------------------------------------

    def _connect(self, deadline: _Deadline) -> _socket.socket:
        """Connects when not connected (again after a close or an idle timeout)."""
        if self._sock is not None and not self._peer_closed():
            return self._sock
        self._drop()
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        left = deadline.remaining()
        sock.settimeout(self.connect_timeout if left is None else min(left, self.connect_timeout))
        try:
            sock.connect(self.path)
        except _socket.timeout:
            sock.close()
            raise CallTimeoutError(f"connecting to {self.path} timed out") from None
        except OSError as e:
            sock.close()
            raise DaemonUnavailableError(
                f"cannot connect to avatard at {self.path}: {e.strerror or e}",
                {"socket": self.path, "errno": e.errno}) from None
        self._sock = sock
        self._buf.clear()
        return sock

    def _peer_closed(self) -> bool:
        """Whether the daemon closed this idle connection (it does after its idle timeout).

        Anything readable between calls is an end of stream or a line that belongs to no
        call (an error with a null id before a close): the connection is not reused."""
        sock = self._sock
        if sock is None:
            return True
        # non-blocking: with a timeout set, Python would first wait for input that long
        sock.setblocking(False)
        try:
            sock.recv(1, _socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        return True  # end of stream (b"") or a stray line

    def _drop(self) -> None:
        """Closes the socket; the next call connects again."""
        sock, self._sock = self._sock, None
        self._buf.clear()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        """Closes the connection (ends any subscription it carries)."""
        with self._lock:
            self._drop()

    @property
    def connected(self) -> bool:
        """Whether a socket is open (it may still turn out closed by the daemon)."""
        return self._sock is not None

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._drop()
        except Exception:
            pass

    # -- one call ------------------------------------------------------------------------------

    def call(self, method: str, params: Any = None, *, fds: Sequence[int] = (),
             timeout: Optional[float] = None,
             on_notification: Optional[NotificationCallback] = None) -> Any:
        """Makes one call and returns its result.

        Args:
            method: the method name, e.g. ``"manager.get_health"``.
            params: a dict (by name), a list (by position) or ``None``.
            fds: descriptors to send with the request (at most 8); ``{"fd": N}`` in params
                names the N-th. They stay open here: the daemon gets duplicates.
            timeout: seconds until the reply must have arrived (``None``: no deadline).
            on_notification: called with ``(method, params)`` for each notification that
                arrives before the reply (progress); by default they are dropped.

        Raises:
            AvatardError: the daemon's error as its class (see :mod:`avatard.errors`),
                :class:`~avatard.errors.CallTimeoutError` at the deadline,
                :class:`~avatard.errors.DaemonUnavailableError` when the socket is gone.
        """
        with self._lock:
            deadline = _Deadline(timeout)
            call_id = self._send(method, params, fds, deadline)
            while True:
                kind, msg = self._read_message(call_id, deadline)
                if kind == "notification":
                    if on_notification is not None:
                        try:
                            on_notification(msg.get("method", ""), msg.get("params") or {})
                        except BaseException:
                            # the rest of this call's lines must not reach the next call
                            self._drop()
                            raise
                    continue
                return self._outcome(msg)

    def stream(self, method: str, params: Any = None, *, fds: Sequence[int] = (),
               timeout: Optional[float] = None, close_at_end: bool = False) -> "Stream":
        """Starts a call whose notifications are read as an iterator (see :class:`Stream`).

        The connection belongs to the stream until it ends: make other calls elsewhere.
        close_at_end: close the connection when the stream ends (one made for it)."""
        self._lock.acquire()
        try:
            deadline = _Deadline(timeout)
            call_id = self._send(method, params, fds, deadline)
        except BaseException:
            self._lock.release()
            raise
        return Stream(self, call_id, deadline, close_at_end)

    def _send(self, method: str, params: Any, fds: Sequence[int], deadline: _Deadline) -> int:
        """Writes the request line (descriptors with its first bytes); returns its id."""
        if len(fds) > MAX_FDS_PER_MESSAGE:
            raise ValueError(f"at most {MAX_FDS_PER_MESSAGE} descriptors per call")
        call_id = self._next_id
        self._next_id += 1
        request: Dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": call_id}
        if params is not None:
            request["params"] = params
        data = _encode(request)
        sock = self._connect(deadline)
        sock.settimeout(deadline.remaining())
        try:
            sent = 0
            if fds:
                sent = _socket.send_fds(sock, [data], list(fds))
            if sent < len(data):
                sock.sendall(memoryview(data)[sent:])
        except _socket.timeout:
            self._drop()
            raise CallTimeoutError(f"{method}: the request could not be sent in time") from None
        except (BrokenPipeError, ConnectionResetError):
            # The daemon closed its side, maybe after an error line (an oversize request)
            # that is waiting to be read: the read that follows reports it.
            pass
        except OSError as e:
            self._drop()
            raise DaemonUnavailableError(f"{method}: sending failed: {e.strerror or e}") from None
        return call_id

    def _read_message(self, call_id: int, deadline: _Deadline) -> Tuple[str, Dict[str, Any]]:
        """The next notification, or the reply to call_id: ("notification"|"reply", dict)."""
        while True:
            line = self._read_line(deadline)
            try:
                msg = json.loads(line)
            except ValueError as e:
                self._drop()
                raise ProtocolError(f"the daemon sent a line that is not JSON: {e}") from None
            if not isinstance(msg, dict):
                self._drop()
                raise ProtocolError("the daemon sent a message that is not an object")
            if "id" not in msg and isinstance(msg.get("method"), str):
                return "notification", msg
            if msg.get("id") == call_id:
                return "reply", msg
            if msg.get("id") is None and "error" in msg:
                # a connection-level error (over a limit, an oversize line): the daemon
                # closes the connection after it
                self._drop()
                raise error_from_reply(msg["error"])
            # a reply to no call of ours: ignored

    def _read_line(self, deadline: _Deadline) -> bytes:
        """One line from the socket (without its end), within the deadline and the size bound."""
        sock = self._sock
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                if line.strip():
                    return line
                continue
            if len(self._buf) > self.max_line:
                self._drop()
                raise ProtocolError(f"a line from the daemon is longer than {self.max_line} bytes")
            if sock is None:
                raise DaemonUnavailableError("the connection to avatard is closed")
            if deadline.passed():
                self._drop()
                raise CallTimeoutError("no reply from avatard before the deadline")
            sock.settimeout(deadline.remaining())
            try:
                chunk = sock.recv(_READ_CHUNK)
            except _socket.timeout:
                self._drop()
                raise CallTimeoutError("no reply from avatard before the deadline") from None
            except InterruptedError:
                continue
            except OSError as e:
                self._drop()
                if e.errno in (errno.ECONNRESET, errno.EPIPE):
                    raise DaemonUnavailableError("avatard closed the connection") from None
                raise DaemonUnavailableError(f"reading from avatard failed: {e.strerror or e}") from None
            if not chunk:
                self._drop()
                raise DaemonUnavailableError("avatard closed the connection before replying")
            self._buf += chunk

    @staticmethod
    def _outcome(msg: Dict[str, Any]) -> Any:
        """The result of a reply, or its error raised."""
        if "error" in msg:
            raise error_from_reply(msg["error"])
        if "result" not in msg:
            raise ProtocolError("a reply without result or error")
        return msg["result"]


class Stream(Iterator[Notification]):
    """A call read as an iterator of its notifications; the reply ends the iteration.

    Each item is a notification's ``params`` (with ``subscription`` and ``seq``; the method
    is under ``"method"`` too). After the last one, :attr:`result` holds the call's result, or
    iterating raised the call's error. Closing the stream early (or leaving a ``with`` block)
    closes its connection, which ends the subscription in the daemon.
    """

    def __init__(self, conn: Connection, call_id: int, deadline: _Deadline, close_at_end: bool = False) -> None:
        self._conn = conn
        self._id = call_id
        self._deadline = deadline
        self._close_at_end = close_at_end
        self._done = False
        self._closed_early = False
        self._result: Any = None
        self.notifications = 0

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> Notification:
        if self._done:
            raise StopIteration
        try:
            kind, msg = self._conn._read_message(self._id, self._deadline)
        except BaseException:
            self._finish()
            raise
        if kind == "notification":
            self.notifications += 1
            params = dict(msg.get("params") or {})
            params.setdefault("method", msg.get("method"))
            return params
        self._finish()
        self._result = Connection._outcome(msg)
        raise StopIteration

    @property
    def done(self) -> bool:
        """Whether the reply arrived (or the stream was closed)."""
        return self._done

    @property
    def result(self) -> Any:
        """The call's result, once the iteration ended."""
        if not self._done:
            raise AvatardError("the stream has not ended yet: iterate it to its end first")
        if self._closed_early:
            raise AvatardError("the stream was closed before its reply")
        return self._result

    def drain(self) -> Any:
        """Reads to the end, dropping the notifications; returns the result."""
        for _ in self:
            pass
        return self._result

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            if self._close_at_end:
                self._conn._drop()
            self._conn._lock.release()

    def close(self) -> None:
        """Stops following: closes the connection (the daemon ends the call)."""
        if not self._done:
            self._closed_early = True
            self._conn._drop()
            self._finish()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def connect(path: Optional[str] = None) -> Connection:
    """A :class:`Connection` to ``path`` (default :func:`default_socket_path`)."""
    return Connection(path)

