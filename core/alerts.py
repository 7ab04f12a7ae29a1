"""Alerts to humans (kill switch, halts, model promotions, failed flows) through Apprise — the one module that
imports apprise. A pure policy decides what is sent (no duplicate within `dedupe_seconds`, at most
`max_per_hour` deliveries) and a pure redaction strips secrets; `Alerter` is the thin shell around them that
talks to the receivers and never raises, so an alert can never take the trader down with it.

Alert URLs often carry tokens (a webhook path, a bot token as host): no log line here ever holds a whole
URL, only its position, scheme and — when it looks like a network address — its host."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import apprise
from pydantic import SecretStr

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger("krakenflow.alerts")

Severity = Literal["info", "warning", "critical"]
Verdict = Literal["send", "duplicate", "rate_limited"]
Outcome = Literal["delivered", "undelivered", "duplicate", "rate_limited", "log_only"]
"""What `Alerter.send` did: delivered to at least one receiver, attempted but every receiver failed,
suppressed by the policy, or only logged (no receivers configured)."""

KINDS = ("kill_switch", "halt", "reconcile_halt", "reconcile_adjusted", "failed_polls", "stale_data",
         "model_promoted", "model_refused", "model_rolled_back", "drift", "flow_failed", "trader_restarted")
"""The kinds in use (documentation, not enforced): short stable keys a receiver can filter on."""

HOUR_S = 3600.0
REDACTED = "***"
LEVELS: Mapping[str, int] = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
NOTIFY_TYPES: Mapping[str, apprise.NotifyType] = {
    "info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING, "critical": apprise.NotifyType.FAILURE}


@dataclass(frozen=True)
class Alert:
    kind: str
    severity: Severity
    title: str
    body: str
    dedupe_key: str | None = None
    """Alerts with the same key are duplicates of each other; default `kind:title`."""

    def __post_init__(self) -> None:
        if self.severity not in LEVELS:
            raise ValueError(f"alert severity must be one of {', '.join(LEVELS)} (got {self.severity!r})")

    @property
    def key(self) -> str:
        return self.dedupe_key or f"{self.kind}:{self.title}"


# ---- policy (pure) ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlertPolicy:
    dedupe_seconds: float = 900.0
    """An alert whose key was sent less than this many seconds ago is a duplicate."""
    max_per_hour: int = 20
    """Deliveries over all keys in the last hour; past it info and warning alerts are dropped. Critical ones
    are never rate-limited (only deduplicated): a drift storm must not swallow the kill switch."""


@dataclass(frozen=True)
class SendHistory:
    sent: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    """Per dedupe key, the times (clock seconds, oldest first) alerts were sent within the last hour or window."""
    suppressed: Mapping[str, int] = field(default_factory=dict)
    """Per dedupe key, alerts suppressed since its last send."""


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    suppressed_before: int
    """For a send: how many alerts with this key were suppressed since the previous one was sent."""
    history: SendHistory
    """The history after this decision (the caller keeps it for the next one)."""


def decide(history: SendHistory, key: str, severity: Severity, now: float, policy: AlertPolicy) -> Decision:
    """Send, or suppress as a duplicate (same key sent within `dedupe_seconds`) or by the hourly rate limit."""
    sent = _recent(history.sent, now - max(policy.dedupe_seconds, HOUR_S))
    previous = sent.get(key, ())
    if previous and now - previous[-1] < policy.dedupe_seconds:
        return _suppress(SendHistory(sent, history.suppressed), key, "duplicate")
    sent_last_hour = sum(1 for times in sent.values() for t in times if t > now - HOUR_S)
    if severity != "critical" and sent_last_hour >= policy.max_per_hour:
        return _suppress(SendHistory(sent, history.suppressed), key, "rate_limited")
    suppressed = {k: n for k, n in history.suppressed.items() if k != key}
    return Decision("send", history.suppressed.get(key, 0), SendHistory({**sent, key: (*previous, now)}, suppressed))


def _recent(sent: Mapping[str, tuple[float, ...]], since: float) -> dict[str, tuple[float, ...]]:
    kept = {key: tuple(t for t in times if t > since) for key, times in sent.items()}
    return {key: times for key, times in kept.items() if times}


def _suppress(history: SendHistory, key: str, verdict: Verdict) -> Decision:
    suppressed = {**history.suppressed, key: history.suppressed.get(key, 0) + 1}
    return Decision(verdict, 0, SendHistory(history.sent, suppressed))


def with_suppressed_note(body: str, suppressed: int) -> str:
    return f"{body}\n({suppressed} similar suppressed)" if suppressed else body


# ---- redaction (pure) ---------------------------------------------------------------------------------------

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@]*:)[^\s/]+@")


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value, and the password of every `scheme://user:password@` in it, as ***."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _URL_PASSWORD.sub(lambda match: f"{match['head']}{REDACTED}@", text)


def url_passwords(url: str) -> tuple[str, ...]:
    """The password in a URL's user info, as written and percent-decoded (none if it has no password)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return ()
    return (password, unquote(password)) if password else ()


def settings_secrets(settings: Settings) -> tuple[str, ...]:
    """Every SecretStr value in the settings, every password inside a URL-valued setting, and the alert URLs
    themselves (their tokens sit in hosts and paths)."""
    secrets: list[str] = list(settings.alert_urls)
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            secrets.append(value.get_secret_value())
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and "://" in text:
                secrets.extend(url_passwords(text))
    return tuple(secrets)


# ---- the shell: receivers through Apprise -------------------------------------------------------------------

def describe_url(position: int, url: str) -> str:
    """What the logs may say about an alert URL: `#2 json://hooks.example.com` — the host only when it looks
    like a network address (a bot token or webhook id in the host position is left out)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host = parts.scheme or "?", parts.hostname or ""
    except ValueError:
        scheme, host = "?", ""
    shown = host if "." in host or ":" in host or host == "localhost" else "…"
    return f"#{position} {scheme}://{shown}"


def with_timeouts(url: str, timeout_s: float) -> str:
    """Apprise's per-URL socket timeouts (`cto` connect, `rto` read; its default is 4 s each) unless the URL
    sets its own, so a dead receiver stalls a send at most about 2 x `timeout_s`."""
    query = parse_qs(urlsplit(url).query) if "?" in url else {}
    extra = "&".join(f"{arg}={timeout_s:g}" for arg in ("cto", "rto") if arg not in query)
    return url if not extra else f"{url}{'&' if '?' in url else '?'}{extra}"


@dataclass
class _Receiver:
    label: str
    notifier: apprise.NotifyBase
    failing: bool = False


class Alerter:
    """Sends alerts to Apprise URLs (none: log only). Every alert is also logged to `krakenflow.alerts` at its
    severity's level, redacted. Thread-safe: the policy runs under a lock, the network calls outside it."""

    def __init__(self, urls: Sequence[str] = (), *, secrets: Iterable[str] = (), policy: AlertPolicy = AlertPolicy(),
                 timeout_s: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 on_outcome: Callable[[Alert, Outcome], None] | None = None) -> None:
        self.on_outcome = on_outcome
        """Hears every alert with what `send` did to it (e.g. a metrics counter); its failure is ignored."""
        self._secrets = (*secrets, *urls)
        self._policy, self._clock = policy, clock
        self._lock = threading.Lock()
        self._history = SendHistory()
        if urls:
            _quiet_apprise()
        built = (_receiver(position, url, timeout_s) for position, url in enumerate(urls, start=1))
        self._receivers = [receiver for receiver in built if receiver is not None]

    @property
    def receivers(self) -> tuple[str, ...]:
        """The receivers in use, as the logs name them (never a whole URL)."""
        return tuple(receiver.label for receiver in self._receivers)

    def send(self, alert: Alert) -> Outcome:
        """Log the alert and deliver it unless the policy suppresses it. Never raises."""
        try:
            outcome = self._send(alert)
        except Exception as error:  # an alert must never take its caller down
            log.error("alert %s could not be sent: %s", alert.kind, redact(repr(error), self._secrets))
            outcome = "undelivered"
        if self.on_outcome is not None:
            with contextlib.suppress(Exception):
                self.on_outcome(alert, outcome)
        return outcome

    def _send(self, alert: Alert) -> Outcome:
        title, body = redact(alert.title, self._secrets), redact(alert.body, self._secrets)
        if not self._receivers:
            log.log(LEVELS[alert.severity], "[%s] %s: %s", alert.kind, title, body)
            return "log_only"
        with self._lock:
            decision = decide(self._history, alert.key, alert.severity, self._clock(), self._policy)
            self._history = decision.history
        if decision.verdict != "send":
            log.log(LEVELS[alert.severity], "[%s] %s: %s (not sent: %s)", alert.kind, title, body, decision.verdict)
            return decision.verdict
        body = with_suppressed_note(body, decision.suppressed_before)
        log.log(LEVELS[alert.severity], "[%s] %s: %s", alert.kind, title, body)
        delivered = [self._deliver(receiver, title, body, alert.severity) for receiver in self._receivers]
        return "delivered" if any(delivered) else "undelivered"

    def _deliver(self, receiver: _Receiver, title: str, body: str, severity: Severity) -> bool:
        try:
            ok = bool(receiver.notifier.notify(body=body, title=title, notify_type=NOTIFY_TYPES[severity]))
        except Exception:
            ok = False
        with self._lock:
            was_failing, receiver.failing = receiver.failing, not ok
        if not ok and not was_failing:
            log.warning("alert receiver %s is unreachable or refused the alert; trading goes on (logged once per "
                        "failure streak)", receiver.label)
        elif ok and was_failing:
            log.info("alert receiver %s delivers again", receiver.label)
        return ok


def _receiver(position: int, url: str, timeout_s: float) -> _Receiver | None:
    label = describe_url(position, url)
    try:
        notifier = apprise.Apprise.instantiate(with_timeouts(url.strip(), timeout_s))
    except Exception:
        notifier = None
    if notifier is None:
        log.error("alert URL %s is not a valid Apprise URL and is skipped: fix it in KRAKENFLOW_ALERT_URLS", label)
        return None
    notifier.request_rate_per_sec = 0  # Apprise would sleep between sends (5.5 s for many services); the policy paces
    return _Receiver(label, notifier)


def _quiet_apprise() -> None:
    """Apprise logs unparseable URLs whole (tokens included) and every failed send; this module reports both
    itself without the URL, so Apprise's own logger stays quiet unless someone set its level on purpose."""
    apprise_log = logging.getLogger("apprise")
    if apprise_log.level == logging.NOTSET:
        apprise_log.setLevel(logging.CRITICAL)


def alerter_from_settings(settings: Settings, policy: AlertPolicy = AlertPolicy()) -> Alerter:
    """The alerter for KRAKENFLOW_ALERT_URLS, redacting every secret the settings hold."""
    return Alerter(settings.alert_urls, secrets=settings_secrets(settings), policy=policy)
