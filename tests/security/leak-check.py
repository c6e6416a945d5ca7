#!/usr/bin/env python3
"""leak-check.py SECRET PATH...: looks for SECRET in the files (directories: every file below
them) in every form a server may echo it in, and that a reader of the file could undo: raw,
JSON-escaped (\\uXXXX, \\/), percent-encoded, and base64 (standard and URL-safe alphabets, at
each of the three byte offsets it can have inside a longer encoded text). Prints one line
"LEAK: PATH: FORM" per find and exits 1 when there was one, else prints "no leak in N file(s)"
and exits 0. Written apart from the daemon's scrubber (daemon/scrub.c), so the two check
each other."""
import base64
import os
import re
import sys
import urllib.parse


def b64_fragments(secret):
    """The base64 characters that depend on the secret alone, for each offset and alphabet."""
    raw = secret.encode()
    out = set()
    for align in range(3):
        enc = base64.b64encode(b"\0" * align + raw + b"\0\0").decode()
        first, end = (8 * align + 5) // 6, (8 * (align + len(raw))) // 6
        frag = enc[first:end]
        out.add(("base64 at offset %d" % align, frag))
        out.add(("URL-safe base64 at offset %d" % align, frag.replace("+", "-").replace("/", "_")))
    return sorted(out)


def views(text):
    """The text as read, and with the escapes and encodings a reader would undo."""
    unescaped = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    unescaped = unescaped.replace("\\/", "/")
    return [("raw", text), ("JSON-escaped", unescaped),
            ("percent-encoded", urllib.parse.unquote(text)),
            ("escaped and percent-encoded", urllib.parse.unquote(unescaped))]


def files(paths):
    for p in paths:
        if os.path.isdir(p):
            for d, _, names in os.walk(p):
                for n in names:
                    yield os.path.join(d, n)
        elif os.path.exists(p):
            yield p


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    secret, found, n = sys.argv[1], 0, 0
    frags = b64_fragments(secret)
    for path in files(sys.argv[2:]):
        n += 1
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        for form, view in views(text):
            if secret in view:
                print("LEAK: %s: %s" % (path, form))
                found += 1
        for form, frag in frags:
            if frag in text:
                print("LEAK: %s: %s" % (path, form))
                found += 1
    if found:
        return 1
    print("no leak in %d file(s)" % n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
