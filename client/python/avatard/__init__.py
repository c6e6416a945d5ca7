"""avatard: the Python client of avatard, the local daemon that serves the Avatar API.

A drop-in for the published ``avatars`` client's ``Manager`` and ``Runner`` over the daemon's
Unix socket, with nothing but the standard library (pandas only when DataFrames are used)::

    from avatard import Manager      # was: from avatars.manager import Manager
    manager = Manager()              # no base_url, no API key: the daemon holds them
    runner = manager.create_runner("patients")
    runner.add_table("patients", "patients.csv")
    runner.set_parameters("patients", k=10)
    runner.run()
    avatars = runner.shuffled("patients")

See :class:`Manager`, :class:`Runner`, :mod:`avatard.errors` (one exception class per error
code) and :mod:`avatard.transport` (the JSON-RPC connection, notifications as iterators).
"""

from . import errors, models
from .errors import AvatardError
from .manager import Manager
from .models import BulkDeleteResponse, JobKind, JobResponse, Results
from .runner import Runner
from .transport import DEFAULT_SOCKET, Connection, Stream, default_socket_path

__version__ = "0.1.0"

__all__ = [
    "Manager",
    "Runner",
    "AvatardError",
    "JobResponse",
    "BulkDeleteResponse",
    "JobKind",
    "Results",
    "Connection",
    "Stream",
    "DEFAULT_SOCKET",
    "default_socket_path",
    "errors",
    "models",
    "__version__",
]
