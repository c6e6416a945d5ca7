"""Tables in and results out, as descriptors.

The daemon never opens a path for a caller: a table travels as a descriptor the caller opened
with its own rights, and a result is written into a descriptor the caller passes
(proto/PROTOCOL.md §5). This module makes those descriptors:

- :func:`open_source` for a table given as a path, an open file, or a pandas DataFrame (written
  as CSV into a pipe by a thread while the daemon reads the other end: no temporary file ever
  holds the data);
- :class:`PipeSink` to receive a result in memory through a pipe, and :func:`open_sink` to
  write one into a file;
- :func:`parse_result` to turn a result's bytes into what the published client returns
  (a DataFrame for CSV tables, parsed JSON for metrics, text for HTML figures).

pandas is imported only when a DataFrame is given or asked for.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from typing import Any, Dict, Mapping, Optional, Union

from .errors import CallTimeoutError, DescriptorIOError

__all__ = [
    "Source",
    "PipeSink",
    "open_source",
    "open_sink",
    "parse_result",
    "is_dataframe",
    "pandas_types",
    "have_pandas",
]

PathLike = Union[str, "os.PathLike[str]"]


def is_dataframe(obj: Any) -> bool:
    """Whether obj is a pandas DataFrame (checked without importing pandas)."""
    cls = type(obj)
    return cls.__name__ == "DataFrame" and cls.__module__.split(".")[0] == "pandas"


def have_pandas() -> bool:
    """Whether pandas can be imported."""
    try:
        import pandas  # noqa: F401 (only whether it imports)
    except ImportError:
        return False
    return True


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:
        raise ImportError("pandas is needed for DataFrames (Debian: python3-pandas)") from e
    return pandas


def pandas_types(df: Any, types: Optional[Mapping[str, Any]] = None) -> Dict[str, str]:
    """The column types of a DataFrame as the daemon names them (``int``, ``float``, ``bool``,
    ``datetime``, ``datetime_tz``, else ``category``); ``types`` overrides column by column."""
    given = {str(k): (v.value if hasattr(v, "value") else v) for k, v in (types or {}).items()}
    out: Dict[str, str] = {}
    for column, dtype in df.dtypes.items():
        name = str(column)
        if name in given:
            out[name] = given[name]
            continue
        d = str(dtype)
        if d.startswith("datetime64") and "," in d:
            out[name] = "datetime_tz"
        elif "datetime" in d:
            out[name] = "datetime"
        elif "float" in d:
            out[name] = "float"
        elif "int" in d:
            out[name] = "int"
        elif "bool" in d:
            out[name] = "bool"
        else:
            out[name] = "category"
    return out


class Source:
    """A descriptor to send as a table, and what must happen once the call is over.

    Attributes:
        fd: the descriptor to send.
        file_name: the name the daemon gives the object's extension from (None: ``.csv``).
        types: column types found in a DataFrame (empty otherwise).
    """

    def __init__(self, fd: int, file_name: Optional[str], *, owned: bool,
                 writer: Optional[threading.Thread] = None, types: Optional[Dict[str, str]] = None) -> None:
        self.fd = fd
        self.file_name = file_name
        self.types: Dict[str, str] = types or {}
        self._owned = owned
        self._writer = writer
        self.error: Optional[BaseException] = None

    def sent(self) -> None:
        """The call carrying the descriptor has been written: our copy of a pipe's read end
        is closed so that the writer sees a broken pipe, not a stall, if the daemon stops."""
        if self._writer is not None:
            self._close_fd()

    def finish(self, timeout: Optional[float], call_failed: bool) -> None:
        """Closes what we opened and waits for a DataFrame's writer; raises what it hit
        (unless the call itself failed, whose error says more)."""
        self._close_fd()
        if self._writer is None:
            return
        self._writer.join(timeout)
        if self._writer.is_alive():
            if call_failed:
                return
            raise CallTimeoutError("the DataFrame is still being written into the pipe")
        if self.error is not None and not call_failed:
            raise DescriptorIOError(
                f"writing the DataFrame into the pipe failed: {self.error}; the table the daemon "
                "received may be incomplete: add it again",
                {"name": "io_error", "retryable": False}) from self.error

    def _close_fd(self) -> None:
        if self._owned and self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


def _write_dataframe(df: Any, wfd: int, source: Source) -> None:
    """Thread body: the DataFrame as CSV into the pipe, then end of file."""
    try:
        with os.fdopen(wfd, "w", encoding="utf-8", newline="") as f:
            df.to_csv(f, index=False)
    except BaseException as e:  # reported by Source.finish()
        source.error = e


def open_source(data: Any, table_name: str) -> Source:
    """A :class:`Source` for ``data``: a path (str or os.PathLike), an open file (anything with
    ``fileno()``, read from its position) or a pandas DataFrame."""
    if is_dataframe(data):
        rfd, wfd = os.pipe()
        os.set_inheritable(rfd, False)
        os.set_inheritable(wfd, False)
        src = Source(rfd, f"{table_name}.csv", owned=True, types=pandas_types(data))
        writer = threading.Thread(target=_write_dataframe, args=(data, wfd, src),
                                  name=f"avatard-table-{table_name}", daemon=True)
        src._writer = writer
        writer.start()
        return src
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return Source(fd, os.path.basename(path), owned=True)
    fileno = getattr(data, "fileno", None)
    if callable(fileno):
        flush = getattr(data, "flush", None)
        if callable(flush) and getattr(data, "writable", lambda: False)():
            flush()
        name = getattr(data, "name", None)
        return Source(fileno(), os.path.basename(name) if isinstance(name, str) else None, owned=False)
    raise TypeError(f"a table is a path, an open file or a pandas DataFrame, not {type(data).__name__}")


def open_sink(path: PathLike) -> int:
    """A descriptor to write a result into ``path`` (created or truncated, with our rights)."""
    return os.open(os.fspath(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)


class PipeSink:
    """A pipe whose write end goes to the daemon and whose read end a thread drains into
    memory, so a result of any size arrives without a temporary file.

    Use: send :attr:`fd` with the call, call :meth:`sent` once it is written, then
    :meth:`data` after the reply (it waits for the daemon to close its end)."""

    def __init__(self) -> None:
        self._rfd, self.fd = os.pipe()
        os.set_inheritable(self._rfd, False)
        os.set_inheritable(self.fd, False)
        self._chunks = bytearray()
        self._error: Optional[BaseException] = None
        self._reader = threading.Thread(target=self._drain, name="avatard-result", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        try:
            while True:
                chunk = os.read(self._rfd, 1 << 20)
                if not chunk:
                    break
                self._chunks += chunk
        except BaseException as e:
            self._error = e
        finally:
            os.close(self._rfd)

    def sent(self) -> None:
        """Closes our copy of the write end: the daemon's is then the only one."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def data(self, timeout: Optional[float]) -> bytes:
        """Everything the daemon wrote, once it closed its end."""
        self.sent()
        self._reader.join(timeout)
        if self._reader.is_alive():
            raise CallTimeoutError("the result is still arriving through the pipe")
        if self._error is not None:
            raise DescriptorIOError(f"reading the result from the pipe failed: {self._error}",
                                    {"name": "io_error", "retryable": False})
        return bytes(self._chunks)

    def abandon(self) -> None:
        """After a failed call: close our end; the thread ends when the daemon closes its own."""
        self.sent()


_CSV_RESULTS = ("shuffled", "unshuffled", "original_projections", "avatar_projections")
_JSON_RESULTS = ("privacy_metrics", "signal_metrics", "run_metadata", "figures_metadata", "advice",
                 "metadata")


def parse_result(result: str, file_name: str, blob: bytes, dataframe: Optional[bool] = None) -> Any:
    """A result's bytes as the published client returns them.

    CSV tables become a pandas DataFrame (``dataframe=None``: when pandas is importable; True:
    always; False: never, a list of row dicts instead); JSON becomes Python objects; HTML
    figures become text; anything else (reports) stays bytes.
    """
    lower = file_name.lower()
    if result in _CSV_RESULTS or lower.endswith(".csv"):
        want = have_pandas() if dataframe is None else dataframe
        if want:
            return _pandas().read_csv(io.BytesIO(blob))
        return list(csv.DictReader(io.StringIO(blob.decode("utf-8"))))
    if result in _JSON_RESULTS or lower.endswith(".json"):
        return json.loads(blob.decode("utf-8"))
    if lower.endswith(".html") or result == "figures":
        return blob.decode("utf-8")
    return blob
