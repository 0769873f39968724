"""How much of a request body the billing service reads, and what JSON it will parse.  Pure.

Any logged-in person can send a body, so a body is hostile until checked: its declared size
is refused before it is read (a route that takes files says how much it takes), and its JSON
is measured before it is parsed, with C-speed passes over the bytes that cannot backtrack or
recurse.  The time to refuse is linear in a size that is already bounded, and the event
loop never waits long on one request.
"""

from __future__ import annotations

import json

KIB = 1024
MIB = 1024 * KIB
JSON_BYTES = 64 * KIB  # every JSON route, unless it takes more
MAX_CONTAINERS = 4096  # objects and lists in one body: a roster of 2000 people needs 2002
MAX_DEPTH = 16  # {"people": [{...}]} is 3
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")  # in valid JSON only the nesting matters


class BodyError(ValueError):
    """A body the service will not parse; ``status`` is the HTTP answer (400 or 413)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def size_text(limit: int) -> str:
    """``65536`` → ``'64 KiB'``, ``1048576`` → ``'1 MiB'``: a limit as people read it."""
    if limit >= MIB and limit % MIB == 0:
        return f"{limit // MIB} MiB"
    if limit >= KIB and limit % KIB == 0:
        return f"{limit // KIB} KiB"
    return f"{limit} bytes"


def declared_length(header: str | None) -> int | None:
    """The Content-Length a request declares; None when it declares none, or junk (which
    tornado refuses itself before reading)."""
    if header is None:
        return None
    header = header.strip()
    if not (header.isascii() and header.isdigit()) or len(header) > 18:
        return None
    return int(header)


def check_size(size: int | None, limit: int) -> None:
    """Refuse a body of ``size`` bytes (declared, or counted) over ``limit``, naming both."""
    if size is not None and size > limit:
        raise BodyError(
            413,
            f"the request body is {size:,} bytes; this address takes at most "
            f"{size_text(limit)} ({limit:,} bytes)",
        )


def json_object(raw: bytes, limit: int = JSON_BYTES) -> dict:
    """The JSON object in ``raw``, or BodyError: over ``limit`` bytes, more than
    MAX_CONTAINERS objects and lists, not JSON, not an object, nested deeper than MAX_DEPTH.

    The size and the count come first, so ``json.loads`` only sees a body of bounded work.
    """
    check_size(len(raw), limit)
    skeleton = brackets(raw)
    if skeleton.count(b"[") > MAX_CONTAINERS:
        raise BodyError(400, f"the body holds more than {MAX_CONTAINERS} objects and lists")
    too_deep = BodyError(400, f"the body nests objects and lists deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(raw or b"{}", parse_constant=_no_constants)
    except RecursionError:
        raise too_deep from None
    except ValueError as e:
        raise BodyError(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BodyError(400, "the body must be a JSON object")
    if nested_deeper(skeleton, MAX_DEPTH):  # exact now: the body is JSON
        raise too_deep
    return data


def brackets(raw: bytes) -> bytes:
    """Where JSON ``raw`` opens and closes its objects and lists, outside its strings, as
    ``[`` and ``]``.

    Escaped backslashes go first, then escaped quotes, so every quote left opens or closes a
    string and every other piece of a split on quotes lies outside one.  For bytes that are
    not JSON the answer is only an estimate, and ``json.loads`` refuses them anyway.
    """
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    return outside.translate(_AS_SQUARE, _NOT_BRACKETS)


def nested_deeper(skeleton: bytes, depth: int) -> bool:
    """Whether balanced ``skeleton`` nests deeper than ``depth``.  Each pass removes the
    pairs that are innermost when it starts (``replace`` does not look at what it made), so
    ``depth`` passes empty anything that nests no deeper."""
    for _ in range(depth):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"[]", b"")
    return bool(skeleton)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a number")
