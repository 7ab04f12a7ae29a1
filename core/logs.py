"""Logs a person or a log shipper can read: one line per event, as text or as JSON lines (`--log-json`),
to stderr and optionally a file (`--log-file`), with every secret the settings hold redacted before any
handler writes — whatever logger the line came from (ours, ccxt's, urllib3's)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.alerts import redact

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
NOISY = ("urllib3", "httpx", "httpcore", "alembic", "mlflow", "prefect", "great_expectations", "apprise", "git")
"""Third-party loggers kept at WARNING so INFO stays about trading (their warnings still come through)."""
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_HANDLER_MARK = "_krakenflow_handler"


class RedactSecrets(logging.Filter):
    """Replaces every secret in the formatted message (and in string extras) with ***; never drops a line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        for key in extra_fields(record):
            value = getattr(record, key)
            if isinstance(value, str):
                setattr(record, key, redact(value, self.secrets))
        return True


def extra_fields(record: logging.LogRecord) -> list[str]:
    """The `extra={...}` keys of a record: what a JSON line carries besides the message."""
    return [key for key in vars(record) if key not in _STANDARD and not key.startswith("_")]


class JsonLines(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO-8601), level, logger, message, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        line.update({key: getattr(record, key) for key in extra_fields(record)})
        if record.exc_info or record.exc_text:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(line, default=str, ensure_ascii=False)


class UtcText(logging.Formatter):
    converter = staticmethod(lambda secs: dt.datetime.fromtimestamp(secs or 0, dt.UTC).timetuple())  # type: ignore[assignment]
    default_msec_format = "%s.%03dZ"


def configure_logging(level: str = "INFO", json_lines: bool = False, file: Path | None = None,
                      secrets: Iterable[str] = ()) -> list[logging.Handler]:
    """Route every logger through redacting handlers on stderr (and `file`, appended, rotated at 50 MB).
    Calling it again replaces the handlers it installed before (tests, a second command in one process)."""
    if level.upper() not in logging.getLevelNamesMapping():
        raise ValueError(f"--log-level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(file, maxBytes=50 * 2**20, backupCount=5,
                                                             encoding="utf-8"))
    formatter: logging.Formatter = JsonLines() if json_lines else UtcText(TEXT_FORMAT)
    redacting = RedactSecrets(secrets)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redacting)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handlers
