"""A full avatarization through the Python package, from a file path and from a pandas
DataFrame, against avatard and avatar-sim. Runs with /usr/bin/python3 and Debian's
python3-pandas: without pandas this test fails, it is never skipped."""

import io
import os
import stat
import sys
import warnings

from harness import case, check, check_eq, env, run, sim

try:
    import pandas as pd
except ImportError as e:  # a failure, not a skip: scripts/test installs python3-pandas
    print(f"not ok 1 - pandas imports ({e}; Debian: apt-get install python3-pandas)")
    print("RESULT: python-avatarization passed=0 failed=1")
    sys.exit(1)

from avatard import Manager
from avatard.data import open_source
from avatard.models import JobKind

TMP = env("AVATARD_TEST_TMP")
IRIS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "iris.csv")
with open(IRIS, "rb") as _f:
    IRIS_BYTES = _f.read()

manager = Manager()


def full_run(runner, table):
    """run(), then the published accessors; returns (shuffled, unshuffled)."""
    runner.run()
    shuffled = runner.shuffled(table)
    unshuffled = runner.sensitive_unshuffled(table)
    check_eq(f"{runner.display_name}: the five jobs finished", ["finished"] * 5,
             [j["status"] for j in runner.wait()["jobs"]])
    check("shuffled() is a DataFrame", isinstance(shuffled, pd.DataFrame), type(shuffled))
    std = runner.get_job(JobKind.standard).name
    stored = pd.read_csv(io.BytesIO(sim.stored(f"/{std}/{table}.shuffled-0.csv")))
    check("... equal to the server's shuffled file", shuffled.equals(stored))
    check("sensitive_unshuffled() is a DataFrame of the same shape",
          isinstance(unshuffled, pd.DataFrame) and unshuffled.shape == shuffled.shape)
    original, avatars = runner.projections(table)
    check("projections(): two DataFrames, one row per input row",
          isinstance(original, pd.DataFrame) and len(original) == len(shuffled) == len(avatars))
    check("privacy_metrics(): a list of dicts", isinstance(runner.privacy_metrics(table), list))
    check("signal_metrics(): a list of dicts", isinstance(runner.signal_metrics(table), list))
    results = runner.get_all_results()
    check("get_all_results(): the shuffled DataFrame among them",
          isinstance(results["standard"][table]["shuffled"], pd.DataFrame))
    report = runner.download_report(os.path.join(TMP, f"{runner.display_name}.pdf"))
    with open(report[0], "rb") as f:
        check("download_report(): a PDF", f.read(5) == b"%PDF-")
    return shuffled, unshuffled


@case
def from_a_file_path():
    """a full avatarization of a CSV given by its path"""
    r = manager.create_runner("py-avatarize-path")
    r.add_table("iris", IRIS)
    check_eq("the table reached storage byte for byte", IRIS_BYTES, sim.stored("/iris.csv"))
    r.set_parameters("iris", k=5)
    shuffled, unshuffled = full_run(r, "iris")
    source = pd.read_csv(IRIS)
    check_eq("the avatars have the table's columns", list(source.columns), list(shuffled.columns))
    check_eq("... and its row count", len(source), len(shuffled))
    check("unshuffled rows are the input's, in order (the simulator's avatars)", unshuffled.equals(source))


@case
def from_a_dataframe():
    """a full avatarization of a pandas DataFrame (through a pipe, never a file)"""
    df = pd.read_csv(IRIS)
    df["when"] = pd.to_datetime("2024-01-01") + pd.to_timedelta(range(len(df)), unit="D")
    df["count"] = range(len(df))
    src = open_source(df, "frame")
    try:
        check("a DataFrame travels through a pipe (the descriptor is a FIFO)",
              stat.S_ISFIFO(os.fstat(src.fd).st_mode))
        check_eq("... with the types of its dtypes",
                 {"sepal_length": "float", "sepal_width": "float", "petal_length": "float",
                  "petal_width": "float", "species": "category", "when": "datetime", "count": "int"},
                 src.types)
    finally:
        src.finish(5, True)
    before = set(os.listdir(TMP))
    r = manager.create_runner("py-avatarize-frame")
    r.add_table("frame", df, types={"count": "category"})
    check_eq("no file was written for it", before, set(os.listdir(TMP)))
    expected = df.to_csv(index=False).encode()
    check_eq("storage holds the DataFrame's CSV byte for byte", expected, sim.stored("/frame.csv"))
    yaml = r.get_yaml()
    check("the schema has the DataFrame's column types", "field: when\n      type: datetime" in yaml
          and "field: sepal_length\n      type: float" in yaml, yaml)
    check("... the given type wins over the dtype", "field: count\n      type: category" in yaml, yaml)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r.set_parameters("frame", k=5)
    shuffled, _ = full_run(r, "frame")
    check_eq("the avatars have the DataFrame's columns", list(df.columns), list(shuffled.columns))
    check_eq("... and its row count", len(df), len(shuffled))
    rows = r.get_specific_result("frame", "standard", "shuffled", dataframe=False)
    check_eq("dataframe=False: the same result as rows", len(df), len(rows))


@case
def a_large_dataframe():
    """a DataFrame larger than a pipe's buffer goes through whole"""
    n = 60000
    df = pd.DataFrame({"id": range(n), "x": [i / 7 for i in range(n)], "label": [f"l{i % 13}" for i in range(n)]})
    r = manager.create_runner("py-avatarize-large")
    seen = []
    r.add_table("big", df, progress=seen.append)
    expected = df.to_csv(index=False).encode()
    check_eq("storage holds them byte for byte", expected, sim.stored("/big.csv"))
    check(f"{len(expected)} bytes, over a MiB", len(expected) > 1 << 20)
    check("the upload of the stream reported its progress (one notification per MiB)",
          seen and seen[0]["bytes"] >= 1 << 20 and seen[0]["event"] == "upload", seen)


sys.exit(run("python-avatarization"))
