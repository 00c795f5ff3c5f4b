"""Confusable skeletons (Unicode UTS #39): two emails that look alike have the same skeleton.

`skeleton` is ICU's (`icu.SpoofChecker.getSkeleton`, ICU bundled by the icukit-pyicu wheel):
`p\u0430yp\u0430l@example.com` (with Cyrillic `\u0430`) and `paypal@example.com` share one, so
do `rn` and `m`, `l` and `1`. `users.email_skeleton` holds it under a unique index, so a
registration or an email change that only looks like an existing account's address is refused
as taken, race-free. A new ICU version may map more characters; revision 0010's docstring says
how to recompute.
"""

from __future__ import annotations

import threading

import icu

_local = threading.local()


def skeleton(text: str) -> str:
    """The UTS #39 skeleton of `text` (compare skeletons, never show them)."""
    checker = getattr(_local, "checker", None)
    if checker is None:  # one per thread: ICU objects are not shared between threads
        checker = _local.checker = icu.SpoofChecker()
    return str(checker.getSkeleton(0, text))
