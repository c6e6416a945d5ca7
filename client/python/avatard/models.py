"""The values the published client passes as enums, and light result objects.

The published ``avatars`` client returns pydantic models (``JobResponse``,
``BulkDeleteResponse``) and takes enums (``JobKind``, ``DataRecipient``, ``ImputeMethod`` ...).
Here the enums are ``str`` enums with the same member names and values, so either a member or
its plain string works anywhere; the models are dicts whose keys are also attributes
(``job.status`` and ``job["status"]``), holding the daemon's JSON as it came (timestamps and
UUIDs as strings).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Dict, Iterable, List, Mapping, Optional

__all__ = [
    "Record",
    "JobResponse",
    "BulkDeleteResponse",
    "JobKind",
    "JobStatus",
    "Results",
    "PlotKind",
    "ReportType",
    "ReportLanguage",
    "DataRecipient",
    "DataType",
    "DataSubject",
    "SensitivityLevel",
    "LinkMethod",
    "ColumnType",
    "ImputeMethod",
    "ExcludeVariablesMethod",
    "ProjectionType",
    "AlignmentMethod",
    "JOB_EXECUTION_ORDER",
    "plain",
]


class Record(Dict[str, Any]):
    """A dict whose keys read as attributes; the declared ``_fields`` read as ``None`` when absent."""

    _fields: tuple = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            if name in type(self)._fields:
                return None
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __dir__(self) -> Iterable[str]:
        return sorted(set(super().__dir__()) | set(self.keys()) | set(type(self)._fields))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


class JobResponse(Record):
    """One job as the server describes it (``name``, ``set_name``, ``status``, ``done`` ...)."""

    _fields = ("name", "set_name", "parameters_name", "display_name", "created_at", "kind",
               "status", "exception", "done", "progress", "deleted_at")


class BulkDeleteResponse(Record):
    """The outcome of a deletion: ``deleted_jobs`` (jobs) and ``failed_jobs`` (job names).

    The daemon adds ``errors`` (why each failed batch failed) and ``batches``."""

    _fields = ("deleted_jobs", "failed_jobs", "errors", "batches")


def job_response(obj: Optional[Mapping[str, Any]]) -> JobResponse:
    """A :class:`JobResponse` from the daemon's job object."""
    return JobResponse(obj or {})


def bulk_delete_response(obj: Mapping[str, Any]) -> BulkDeleteResponse:
    """A :class:`BulkDeleteResponse` from the daemon's ``Deletion`` object."""
    r = BulkDeleteResponse(obj)
    r["deleted_jobs"] = [job_response(j) for j in obj.get("deleted_jobs") or []]
    r["failed_jobs"] = list(obj.get("failed_jobs") or [])
    return r


class _StrEnum(str, Enum):
    """A str enum (Python 3.9 has no ``enum.StrEnum``): members compare equal to their value."""

    def __str__(self) -> str:
        return str(self.value)


class JobKind(_StrEnum):
    standard = "standard"
    privacy_metrics = "privacy_metrics"
    signal_metrics = "signal_metrics"
    report = "report"
    advice = "advice"


class JobStatus(_StrEnum):
    created = "created"
    queued = "queued"
    pending = "pending"
    finished = "finished"
    error = "error"
    parent_error = "parent_error"


#: The jobs ``Runner.run()`` launches by default, in their order.
JOB_EXECUTION_ORDER: List[JobKind] = [
    JobKind.standard, JobKind.signal_metrics, JobKind.privacy_metrics, JobKind.report,
]


class Results(_StrEnum):
    ADVICE = "advice"
    SHUFFLED = "shuffled"
    UNSHUFFLED = "unshuffled"
    PRIVACY_METRICS = "privacy_metrics"
    SIGNAL_METRICS = "signal_metrics"
    PROJECTIONS_ORIGINAL = "original_projections"
    PROJECTIONS_AVATARS = "avatar_projections"
    METADATA = "run_metadata"
    REPORT = "report"
    FIGURES = "figures"
    FIGURES_METADATA = "figures_metadata"


class PlotKind(_StrEnum):
    CORRELATION = "correlation"
    CORRELATION_DIFFERENCE = "correlation_difference"
    CONTRIBUTION = "contribution"
    PROJECTION_2D = "2d_projection"
    PROJECTION_3D = "3d_projection"
    DISTRIBUTION = "distribution"
    AGGREGATE_STATS = "aggregate_stats"
    RAW_SERIES = "raw_series"
    NORMALIZED_SERIES = "normalized_series"


class ReportType(_StrEnum):
    BASIC = "basic"
    PIA = "pia"


class ReportLanguage(_StrEnum):
    EN = "en"
    FR = "fr"


class DataRecipient(_StrEnum):
    UNKNOWN = "unknown"
    OPENDATA = "opendata"
    CONTRACTUAL_THIRDPARTY = "contractual_thirdparty"
    INTERNAL = "internal"
    OUTSIDE_EU = "outside_eu"
    TRUSTED_THIRDPARTY = "trusted_thirdparty"


class DataType(_StrEnum):
    UNKNOWN = "unknown"
    HEALTH = "health"
    HR = "hr"
    MOBILITY = "mobility"
    INSURANCE = "insurance"
    FINANCE = "finance"
    EDUCATION = "education"


class DataSubject(_StrEnum):
    UNKNOWN = "unknown"
    PATIENTS = "patients"
    EMPLOYEES = "employees"
    CLIENTS = "clients"
    USERS = "users"
    STUDENTS = "students"


class SensitivityLevel(_StrEnum):
    VERY_HIGH = "Very High"
    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"
    VERY_LOW = "Very Low"
    NEGLIGIBLE = "Negligible"
    UNDEFINED = "Undefined"


class LinkMethod(_StrEnum):
    LINEAR_SUM_ASSIGNMENT = "linear_sum_assignment"
    MINIMUM_DISTANCE_ASSIGNMENT = "minimum_distance_assignment"
    SENSITIVE_ORIGINAL_ORDER_ASSIGNMENT = "sensitive_original_order_assignment"
    TIME_SERIES = "time_series"


class ColumnType(_StrEnum):
    INT = "int"
    BOOL = "bool"
    CATEGORY = "category"
    NUMERIC = "float"
    DATETIME = "datetime"
    DATETIME_TZ = "datetime_tz"


class ImputeMethod(_StrEnum):
    KNN = "knn"
    MODE = "mode"
    MEDIAN = "median"
    MEAN = "mean"
    FAST_KNN = "fast_knn"


class ExcludeVariablesMethod(_StrEnum):
    ROW_ORDER = "row_order"
    COORDINATE_SIMILARITY = "coordinate_similarity"


class ProjectionType(_StrEnum):
    FCPA = "fpca"
    FLATTEN = "flatten"


class AlignmentMethod(_StrEnum):
    SPECIFIED = "specified"
    MAX = "max"
    MIN = "min"
    MEAN = "mean"


def plain(value: Any) -> Any:
    """``value`` with enum members replaced by their values, through lists, tuples and dicts."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
