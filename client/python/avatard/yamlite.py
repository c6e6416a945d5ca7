"""A reader for the block-style YAML subset of resource YAML (what the daemon exports).

The standard library has no YAML parser, and the package installs nothing. The daemon's
resource YAML (``runner.export_yaml``) is block style: documents separated by ``---``,
mappings, sequences (``- ``), plain or quoted scalars, and simple flow lists (``[a, b]``).
That is all this reads; anything else raises ``ValueError``, and callers then show the text.
"""

from __future__ import annotations

import json
import re
from typing import Any, List, Tuple

__all__ = ["load_all"]

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?$")


def _scalar(text: str) -> Any:
    """A plain or quoted scalar, or a simple flow sequence/mapping."""
    s = text.strip()
    if s == "" or s in ("~", "null", "Null", "NULL"):
        return None
    if s in ("true", "True", "TRUE"):
        return True
    if s in ("false", "False", "FALSE"):
        return False
    if s.startswith('"'):
        return json.loads(s)
    if s.startswith("'"):
        if not s.endswith("'") or len(s) < 2:
            raise ValueError(f"unterminated quoted scalar: {s}")
        return s[1:-1].replace("''", "'")
    if s.startswith("["):
        inner = s[1:-1].strip() if s.endswith("]") else None
        if inner is None:
            raise ValueError(f"unterminated flow sequence: {s}")
        return [] if not inner else [_scalar(p) for p in _split_flow(inner)]
    if s.startswith("{"):
        if s != "{}":
            raise ValueError("flow mappings are not read")
        return {}
    if _INT.match(s):
        return int(s)
    if _FLOAT.match(s):
        return float(s)
    return s


def _split_flow(inner: str) -> List[str]:
    """Splits a flow sequence's items at commas outside quotes."""
    parts, cur, quote = [], "", ""
    for ch in inner:
        if quote:
            cur += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _strip_comment(line: str) -> str:
    """The line without a trailing comment (a # after a space, outside quotes)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _split_key(text: str) -> Tuple[str, str]:
    """``key: rest`` → (key, rest); raises ValueError when the line is no mapping entry."""
    if text.startswith('"') or text.startswith("'"):
        end = text.index(text[0], 1)
        key, rest = text[1:end], text[end + 1:]
        if not rest.startswith(":"):
            raise ValueError(f"not a mapping entry: {text}")
        return key, rest[1:].strip()
    m = re.match(r"^([^:#]+?):(\s+|$)(.*)$", text)
    if not m:
        raise ValueError(f"not a mapping entry: {text}")
    return m.group(1).strip(), m.group(3)


class _Lines:
    def __init__(self, lines: List[Tuple[int, str]]) -> None:
        self.lines = lines
        self.i = 0

    def peek(self) -> Tuple[int, str]:
        return self.lines[self.i] if self.i < len(self.lines) else (-1, "")


def _block(ls: _Lines, indent: int) -> Any:
    """The node whose lines start at column ``indent``."""
    col, text = ls.peek()
    if col < indent:
        return None
    if text.startswith("- ") or text == "-":
        return _sequence(ls, col)
    return _mapping(ls, col)


def _value_after(ls: _Lines, rest: str, parent_col: int) -> Any:
    """The value of ``key:`` given the rest of its line and the block that may follow."""
    if rest.strip():
        return _scalar(rest)
    col, text = ls.peek()
    if col > parent_col or (col == parent_col and (text.startswith("- ") or text == "-")):
        return _block(ls, col)
    return None


def _mapping(ls: _Lines, col: int) -> dict:
    out: dict = {}
    while True:
        c, text = ls.peek()
        if c != col or text.startswith("- ") or text == "-":
            if c > col:
                raise ValueError(f"unexpected indentation: {text}")
            return out
        ls.i += 1
        key, rest = _split_key(text)
        out[key] = _value_after(ls, rest, col)


def _sequence(ls: _Lines, col: int) -> list:
    out: list = []
    while True:
        c, text = ls.peek()
        if c != col or not (text.startswith("- ") or text == "-"):
            return out
        ls.i += 1
        item = text[2:].strip() if len(text) > 1 else ""
        if not item:
            nc, _ = ls.peek()
            out.append(_block(ls, nc) if nc > col else None)
            continue
        try:
            key, rest = _split_key(item)
        except ValueError:
            out.append(_scalar(item))
            continue
        # a mapping that starts on the dash's line: its keys sit two columns in
        inner = col + 2
        m = {key: _value_after(ls, rest, inner)}
        nc, _ = ls.peek()
        if nc == inner:
            m.update(_mapping(ls, inner))
        out.append(m)


def load_all(text: str) -> List[Any]:
    """Every document of a multi-document YAML text, as Python objects."""
    docs: List[Any] = []
    current: List[Tuple[int, str]] = []

    def flush() -> None:
        if current:
            ls = _Lines(current)
            docs.append(_block(ls, current[0][0]))
            if ls.i != len(current):
                raise ValueError(f"cannot read the line: {current[ls.i][1]}")
            current.clear()

    for raw in text.splitlines():
        if raw.startswith("---"):
            flush()
            continue
        if raw.startswith("..."):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError("tabs in indentation")
        line = _strip_comment(raw)
        if not line.strip():
            continue
        current.append((len(line) - len(line.lstrip(" ")), line.strip()))
    flush()
    return docs
