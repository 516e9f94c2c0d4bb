"""Start-up output: what an operator sees when a role starts."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from ichnaea.logging import BufferedStreamHandler, RecordMaker, SecondFormatter


def run_python(code: str, tmp_path: Path) -> str:
    env = dict(os.environ, ICHNAEA_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout + done.stderr


def test_web_role_start_logs_no_alembic_plugin_lines(tmp_path: Path) -> None:
    # What `ichnaea web` does: configure logging, then uvicorn imports the app.
    output = run_python(
        "from ichnaea.logging import configure_logging\n"
        "configure_logging('INFO', role='web')\n"
        "import ichnaea.web.asgi\n",
        tmp_path,
    )
    assert "alembic.runtime.plugins" not in output, output
    assert "setup plugin" not in output


def test_info_lines_are_buffered_briefly_and_warnings_written_at_once() -> None:
    written = io.BytesIO()
    stream = io.TextIOWrapper(io.BufferedWriter(written), encoding="utf-8")  # type: ignore[arg-type]
    handler = BufferedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("tests.buffered")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("first")
        assert written.getvalue() == b""  # buffered, not written yet
        log.warning("second")  # written at once, with what came before it, in order
        assert written.getvalue() == b"INFO first\nWARNING second\n"
        log.info("third")
        deadline = time.monotonic() + 5
        while b"third" not in written.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert written.getvalue().endswith(b"INFO third\n")  # by the flusher thread
    finally:
        log.removeHandler(handler)
        handler.close()


def test_record_maker_gives_the_record_logger_info_would() -> None:
    logger = logging.getLogger("ichnaea.test.records")
    made = RecordMaker(logger, logging.INFO)('{"a":1}')
    before = time.time()
    model = logger.makeRecord(logger.name, logging.INFO, __file__, 0, '{"a":1}', (), None)
    ours = RecordMaker(logger, logging.INFO)('{"a":1}')
    assert type(ours) is logging.LogRecord
    times = ("created", "msecs", "relativeCreated")
    assert {
        k: v for k, v in vars(ours).items() if k not in (*times, "pathname", "filename", "module")
    } == {
        k: v for k, v in vars(model).items() if k not in (*times, "pathname", "filename", "module")
    }
    assert before <= ours.created <= time.time()
    assert ours.msecs == int((ours.created - int(ours.created)) * 1000)
    assert ours.getMessage() == '{"a":1}' and made.getMessage() == '{"a":1}'
    formatter = logging.Formatter("%(levelname)s [%(process)d] %(name)s: %(message)s")
    assert formatter.format(ours) == f'INFO [{os.getpid()}] ichnaea.test.records: {{"a":1}}'


def test_record_maker_takes_the_new_process_id_after_a_fork() -> None:
    maker = RecordMaker(logging.getLogger("ichnaea.test.records"), logging.INFO)
    maker("first")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its records carry its own process id
        os.write(write, str(maker("child").process).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert int(os.read(read, 100)) == pid
    os.close(read)
    assert maker("parent").process == os.getpid()


def test_second_formatter_writes_what_the_standard_formatter_writes() -> None:
    fmt, datefmt = (
        "%(asctime)s %(levelname)-7s [web:%(process)d] %(name)s: %(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    standard, ours = logging.Formatter(fmt, datefmt=datefmt), SecondFormatter(fmt, datefmt=datefmt)
    logger = logging.getLogger("ichnaea.test.format")
    base = 1_800_000_000.0
    for created in (base, base + 0.4, base + 0.999, base + 1.0, base + 3601.5, base - 86400):
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 0, "hello %s", ("you",), None
        )
        record.created = created
        assert ours.format(record) == standard.format(record)
        assert ours.formatTime(record, "%H") == standard.formatTime(record, "%H")


# -- RecordWriter: the request log's lines without the handler chain ---------

SERVICE_FORMAT = "%(asctime)s %(levelname)-7s [web:%(process)d] %(name)s: %(message)s"
SERVICE_DATEFMT = "%Y-%m-%dT%H:%M:%S"


class _Lines:
    """A logger with our handler alone on it, writing to a string."""

    def __init__(self, name: str, fmt: str = SERVICE_FORMAT) -> None:
        self.stream = io.StringIO()
        self.handler = BufferedStreamHandler(self.stream)
        self.handler.setFormatter(SecondFormatter(fmt, SERVICE_DATEFMT))
        self.logger = logging.getLogger(name)
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()


def test_record_writer_writes_the_line_the_handler_writes() -> None:
    from ichnaea.logging import RecordWriter

    lines = _Lines("tests.writer.same")
    try:
        writer = RecordWriter(lines.logger, logging.INFO)
        message = '{"event":"POST /v1/geolocate - 200","\\u00e9":"caf\u00e9 \u2615"}'
        for _ in range(3):  # the two lines must fall in one second
            lines.stream.seek(0)
            lines.stream.truncate()
            lines.logger.info(message)  # the logger's own way
            writer.write(message)  # straight to the stream
            theirs, ours = lines.stream.getvalue().splitlines(keepends=True)
            if theirs[:19] == ours[:19]:
                break
        assert ours == theirs
        assert ours.endswith(f"[web:{os.getpid()}] tests.writer.same: {message}\n")
    finally:
        lines.close()


def test_record_writer_names_the_new_process_after_a_fork() -> None:
    # The line's text around the message is kept per second and per process:
    # a forked child must not write its parent's process id.
    from ichnaea.logging import RecordWriter

    lines = _Lines("tests.writer.fork")
    try:
        writer = RecordWriter(lines.logger, logging.INFO)
        writer.write("parent")
        assert f"[web:{os.getpid()}]" in lines.stream.getvalue()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never back into pytest, whatever happens
            try:
                lines.stream.seek(0)
                lines.stream.truncate()
                writer.write("child")
                os.write(write, lines.stream.getvalue().encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        child_line = os.read(read, 1000).decode()
        os.close(read)
        assert child_line.endswith(f"[web:{pid}] tests.writer.fork: child\n")
        writer.write("parent again")
        assert lines.stream.getvalue().endswith(
            f"[web:{os.getpid()}] tests.writer.fork: parent again\n"
        )
    finally:
        lines.close()


def test_record_writer_takes_its_direct_way_only_when_alone() -> None:
    from ichnaea.logging import RecordWriter

    lines = _Lines("tests.writer.alone")
    seen: list[logging.LogRecord] = []
    try:
        writer = RecordWriter(lines.logger, logging.INFO)
        handled = []
        original = lines.logger.handle
        lines.logger.handle = lambda record: (handled.append(record), original(record))  # type: ignore[method-assign]
        writer.write("direct")
        assert handled == []  # the logger's chain was skipped
        assert lines.stream.getvalue().endswith("tests.writer.alone: direct\n")

        listener = logging.Handler()
        listener.emit = seen.append  # type: ignore[method-assign]
        lines.logger.addHandler(listener)
        writer.write("both")  # another handler listens: the logger's way, both see it
        assert [r.getMessage() for r in handled] == ["both"]
        assert [r.getMessage() for r in seen] == ["both"]
        assert lines.stream.getvalue().endswith("tests.writer.alone: both\n")
        lines.logger.removeHandler(listener)

        lines.logger.setLevel(logging.WARNING)
        writer.write("dropped")  # below the logger's level: neither way writes it
        assert "dropped" not in lines.stream.getvalue()
    finally:
        lines.close()


def test_record_writer_leaves_finer_formats_to_the_formatter() -> None:
    """A format with a field that changes within a second (here msecs) is not
    written directly: the formatter writes each line."""
    from ichnaea.logging import RecordWriter

    lines = _Lines("tests.writer.msecs", fmt="%(asctime)s.%(msecs)03d %(message)s")
    try:
        assert not lines.handler.formatter.per_second  # type: ignore[union-attr]
        handled = []
        original = lines.logger.handle
        lines.logger.handle = lambda record: (handled.append(record), original(record))  # type: ignore[method-assign]
        RecordWriter(lines.logger, logging.INFO).write("fine")
        assert [r.getMessage() for r in handled] == ["fine"]
    finally:
        lines.close()
    assert SecondFormatter(SERVICE_FORMAT, SERVICE_DATEFMT).per_second
    assert not SecondFormatter("%(thread)d %(message)s", SERVICE_DATEFMT).per_second
    assert not SecondFormatter(SERVICE_FORMAT, "%H:%M:%S.%f").per_second
