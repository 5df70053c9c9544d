"""Credentials never leave the process: every URI shown to a person, written to a file or
logged has its user-info masked.

    masked("http://alice:s3cret@host:5000/x")   -> "http://***@host:5000/x"
    masked("cannot reach 'postgresql://u:p@db/x'") -> "cannot reach 'postgresql://***@db/x'"

`masked` is the one masking function: it takes a URI or any text that quotes URIs (an error
from MLflow, pyarrow or Ray), and replaces the user-info of each `scheme://user-info@` with
`***`. The user-info runs to the last '@' before the host's end ('/', whitespace or a quote),
as urllib's urlsplit reads it, so a password holding '@' is masked whole. `MaskingFilter` puts
every log record through it.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
#: scheme://user-info@ ; user-info: anything but '/', whitespace and quotes, greedy to the
#: last '@' of the authority
_USER_INFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s'\"<>]+@")


def masked(text: str) -> str:
    """`text` with the user-info of every URI in it replaced by ***."""
    return _USER_INFO.sub(lambda found: f"{found['scheme']}{MASK}@", text)


class MaskingFilter(logging.Filter):
    """A log filter that formats each record's message and masks the URIs in it (a library's
    log line may quote the URI it was given)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = masked(message)
        if shown != message:
            record.msg, record.args = shown, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = masked(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def mask_logging() -> None:
    """Every handler of the root logger masks URIs (call once handlers exist)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
