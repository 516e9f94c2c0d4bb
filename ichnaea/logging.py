"""Logging set-up shared by every role: one line per event on stderr.

Each line carries the time, level, process role and logger name, so the
combined output of ``ichnaea serve`` (web + worker + scheduler) can be told
apart at 3 a.m.

Lines below WARNING are buffered and written at most :data:`FLUSH_INTERVAL_S`
later (by a flusher thread, and at exit): a web process logs one line per
request, and a write system call for each was a measurable share of a
request's cost. A WARNING or worse is written at once, with whatever was
buffered before it, so the order is kept and nothing that matters waits.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import re
import sys
import threading
import time
from typing import TextIO

FLUSH_INTERVAL_S = 0.1

# Loggers whose INFO lines say nothing to an operator: alembic logs one
# "setup plugin" line per built-in autogenerate plugin whenever a role first
# imports it (seven lines at every start of the web role).
QUIET_LOGGERS = {"alembic.runtime.plugins": logging.WARNING}

# Bumped in a forked child, where the per-process templates below are made
# again: comparing it costs nothing, while asking for the process id is a
# system call, once per request in the web role.
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class RecordMaker:
    """Records of one logger and level for a message text, from a per-process template.

    ``Logger.info`` finds its caller by walking the stack, and
    ``LogRecord.__init__`` then derives a dozen attributes (file name,
    module, thread, process) that are the same for every line of the
    request log. Here they are derived once per process (the template is
    remade after a fork) and copied; only the message and the times are
    new. The record is a real ``LogRecord``: handlers and formatters see
    what they always see.
    """

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level
        self._forks = -1
        self._template: dict[str, object] = {}

    def __call__(self, message: str) -> logging.LogRecord:
        if self._forks != _forks:
            model = self.logger.makeRecord(self.logger.name, self.level, __file__, 0, "", (), None)
            self._template = dict(vars(model))
            self._forks = _forks
        record = logging.LogRecord.__new__(logging.LogRecord)
        fields = vars(record)
        fields.update(self._template)
        now = time.time()
        # As LogRecord.__init__ computes them (Python 3.11/3.12).
        fields["created"] = now
        fields["msecs"] = int((now - int(now)) * 1000) + 0.0
        fields["relativeCreated"] = (now - logging._startTime) * 1000  # type: ignore[attr-defined]
        fields["msg"] = message
        return record


class RecordWriter:
    """One logger's records of one level, written as its handler would write them, faster.

    ``write(message)`` makes the record (:class:`RecordMaker`) and hands it to
    the logger, unless the only place the record would go is the stream of
    the handler :func:`configure_logging` installs: then it writes the
    formatted line to that stream itself, under the handler's lock. The
    line is the formatter's own output: once per second the formatter
    formats a record whose message is a marker, and the text around the
    marker is kept (the format names only per-second, per-process and
    per-logger fields: :data:`_PER_SECOND_FIELDS`). Anything else set up
    (another handler, a filter, a handler level that drops the records, a
    format with other fields, pytest's capture) takes the logger's own way.

    The web role logs a line per request; through the logger the line cost
    about 15 µs of a 90 µs Wi-Fi locate, this way a few
    (``benchmarks/RESULTS.md``, session 15).
    """

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level
        self._make = RecordMaker(logger, level)
        self._second = -1
        self._handler: BufferedStreamHandler | None = None
        self._around = ("", "")
        self._forks = -1

    def write(self, message: str) -> None:
        """Log ``message`` at the level, as ``Logger.log`` would (nothing if the
        logger is not enabled for it)."""
        if not self.logger.isEnabledFor(self.level):
            return
        handler = self._direct_handler()
        if handler is None:
            self.logger.handle(self._make(message))
            return
        second = int(time.time())
        if second != self._second or handler is not self._handler or self._forks != _forks:
            marker = "\x00marker\x00"
            record = self._make(marker)
            record.created, record.msecs = float(second), 0.0
            before, _, after = handler.format(record).partition(marker)
            self._around = (before, after + handler.terminator)
            self._second, self._handler, self._forks = second, handler, _forks
        before, after = self._around
        handler.acquire()
        try:
            handler.stream.write(before + message + after)
        except Exception:  # as StreamHandler.emit: logging never raises
            handler.handleError(self._make(message))
        finally:
            handler.release()

    def _direct_handler(self) -> BufferedStreamHandler | None:
        """Our stream handler if it is where the record would go, and alone; else None."""
        logger: logging.Logger | None = self.logger
        found = None
        while logger is not None:
            if logger.filters or logger.disabled:
                return None
            for handler in logger.handlers:
                if found is not None or type(handler) is not BufferedStreamHandler:
                    return None
                found = handler
            if not logger.propagate:
                break
            logger = logger.parent
        if found is None or found.filters or self.level < found.level:
            return None
        formatter = found.formatter
        if type(formatter) is not SecondFormatter or not formatter.per_second:
            return None
        return found


# The record fields a format may name for RecordWriter to write its lines.
_PER_SECOND_FIELDS = frozenset(("asctime", "levelname", "levelno", "name", "process", "message"))


class SecondFormatter(logging.Formatter):
    """A formatter whose time has whole seconds, written once per second, not per record.

    ``formatTime`` (``localtime`` + ``strftime``) was the costliest part of
    a request log line. Handlers format under their lock, so the cache needs
    no lock of its own.
    """

    def __init__(self, fmt: str, datefmt: str) -> None:
        super().__init__(fmt, datefmt=datefmt)
        self._second = -1
        self._text = ""
        # Whether a line differs from another of its logger and level in the
        # same second only by its message (see RecordWriter): the format
        # names no other field and the date has no finer part than seconds.
        self.per_second = set(re.findall(r"%\((\w+)\)", fmt)) <= _PER_SECOND_FIELDS and set(
            re.findall(r"%(.)", datefmt)
        ) <= set("YmdHMS")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second or datefmt != self.datefmt:
            self._text = super().formatTime(record, datefmt)
            self._second = second if datefmt == self.datefmt else -1
        return self._text


class BufferedStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that flushes at once only for WARNING and above."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._flush_now = False
        self._stopped = threading.Event()
        flusher = threading.Thread(target=self._flush_periodically, name="log-flush", daemon=True)
        flusher.start()
        atexit.register(self.close)

    def emit(self, record: logging.LogRecord) -> None:
        self._flush_now = record.levelno >= logging.WARNING
        super().emit(record)  # calls flush()

    def flush(self) -> None:
        if self._flush_now:
            super().flush()

    def _flush_periodically(self) -> None:
        while not self._stopped.wait(FLUSH_INTERVAL_S):
            self._flush_buffered()

    def _flush_buffered(self) -> None:
        self.acquire()
        try:
            super().flush()
        finally:
            self.release()

    def close(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._flush_buffered()
        super().close()
        stream = self.stream
        if isinstance(stream, io.TextIOWrapper) and stream is not sys.stderr:
            # Our wrapper of sys.stderr's buffer: let it go without closing stderr.
            stream.detach()


def _buffered_stderr() -> TextIO:
    buffer = getattr(sys.stderr, "buffer", None)
    if buffer is None:
        return sys.stderr
    return io.TextIOWrapper(
        buffer,
        encoding=sys.stderr.encoding or "utf-8",
        errors="backslashreplace",
        line_buffering=False,
        write_through=False,
    )


def configure_logging(level: str = "INFO", *, role: str = "ichnaea") -> None:
    """Configure the root logger for this process (idempotent)."""
    handler = BufferedStreamHandler(_buffered_stderr())
    handler.setFormatter(
        SecondFormatter(
            f"%(asctime)s %(levelname)-7s [{role}:%(process)d] %(name)s: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
    )
    # The format names neither the thread nor the process name: records skip
    # looking them up (a measurable share of the request log line's cost).
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if isinstance(old, BufferedStreamHandler):
            old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet_level)
