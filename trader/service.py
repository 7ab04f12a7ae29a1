"""The trader process for live (or emulator) trading: load @champion, check the key, warm up, poll.

Paper trading on live candles is the same process on public endpoints only: the same LiveLoop, warm-up,
engine and risk, and the same ledger, with the simulated fill model instead of Kraken's account
(`open_paper_session`). A ledger is either live or paper, never both (`trader.status.ledger_mode`).

One API key per process (Kraken nonces are per key). Secrets come from Settings as SecretStr and are
only unwrapped at the ccxt boundary; they are never logged. Alerts (`core.alerts.Alerter`, optional) go
out on a reconciliation halt or adjustment, a streak of failed polls, stale market data, a restart after
a crash, a halt of the exchange clock and a model reload.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.params import LiveParams, Params
from core.settings import Settings
from core.timeframe import to_ms
from core.types import OrderIntent
from market import instruments
from market.errors import BadMarketData, ExchangeUnavailable, InvalidNonce, RateLimited
from market.fills import PairLimits
from market.kraken import KrakenClient, make_exchange
from models import registry
from trader.brokers.kraken import KrakenBroker, LookupPolicy
from trader.brokers.simulated import PaperBroker, fill_model
from trader.controls import Command, CommandRefused, OperatorState, next_state, validated
from trader.engine import Decision, Engine
from trader.ledger import Ledger, LedgerError, safe_url
from trader.live import BACKLOG, ClockWentBack, LiveLoop
from trader.model import trading_model
from trader.reconcile import Reconciliation, reconcile_with_exchange
from trader.reload import ModelWatcher, ReloadRefused, load_for_swap, warm_states
from trader.status import LiveView, health_problems, ledger_mode, snapshot
from trader.strategy import ThresholdStrategy
from trader.telemetry import TraderTelemetry

if TYPE_CHECKING:
    from core.alerts import Alerter, Severity

log = logging.getLogger(__name__)

FAILED_POLLS_ALERT = 5
"""Failed polls in a row that send a warning alert, once per streak (params.yaml `live` has no field for it)."""


class UnsafeKeyError(RuntimeError):
    """The API key can withdraw funds: a trading process must only hold a trade-only key."""


class LedgerModeError(LedgerError):
    """A paper session on a ledger holding live orders, or the other way round."""


@dataclass
class LiveSession:
    loop: LiveLoop
    broker: KrakenBroker | PaperBroker
    """Kraken's account (live) or the simulated venue (paper); either writes the same ledger."""
    model_name: str
    live: LiveParams
    instruments: instruments.InstrumentTable
    """Kraken's AssetPairs as fetched at start-up (or the cached copy): where balances arrive, minimums."""
    watcher: ModelWatcher | None = None
    last_poll_unix: float = 0.0
    """When the last poll ended, whatever its outcome."""
    last_ok_poll_unix: float = 0.0
    """When the last poll that reached the exchange and fed its candles ended."""
    failures_in_a_row: int = 0
    last_error: str = ""
    busy_since_unix: float = 0.0
    """Non-zero while the trading thread is inside a poll (a watchdog reads how long)."""
    last_equity: float = float("nan")
    last_cash: float = float("nan")
    mode: str = "live"
    """"live" (Kraken's account) or "paper" (simulated fills on live candles)."""
    alerter: Alerter | None = None
    session_id: str = ""
    """Names this session's `session_start` and `session_end` audit rows (a start without an end = a crash)."""
    stale: str = ""
    """Why the market data is stale now ('' = fresh): an alert goes out once per stale streak."""
    operator: OperatorState = field(default_factory=OperatorState)
    """What the operator's commands left in force (the ledger keeps it; trader.controls)."""
    equity_marked_ts: int = -1
    """The newest candle whose equity mark is in the ledger."""
    closed: bool = False
    telemetry: TraderTelemetry = field(default_factory=TraderTelemetry)
    """This session's Prometheus metrics (trader.telemetry), served on /metrics by `serve_status`."""

    @property
    def engine(self) -> Engine:
        return self.loop.engine

    @property
    def model_version(self) -> int | None:
        """The registry version trading now (the engine's; it changes on a hot reload)."""
        return self.engine.model_version

    def close(self) -> None:
        """Audit a clean `session_end`, then release the ledger (and its lock): another trader may take it
        over. A process that dies without this leaves its `session_start` unmatched: the next start alerts."""
        if self.closed:
            return
        self.closed = True
        ledger = self.broker.ledger
        try:
            ledger.audit("session_end", {"session": self.session_id, "mode": self.mode,
                                         "version": self.model_version, "halted": self.engine.halted})
        except Exception:
            log.exception("could not audit the end of the session (the next start will report a crash)")
        finally:
            ledger.close()


def connect(settings: Settings, throttle: bool = True) -> KrakenClient:
    if settings.kraken_key is None or settings.kraken_secret is None:
        raise ValueError("live trading needs KRAKENFLOW_KRAKEN_KEY and KRAKENFLOW_KRAKEN_SECRET")
    exchange = make_exchange(settings.kraken_url, settings.kraken_key.get_secret_value(),
                             settings.kraken_secret.get_secret_value(), throttle=throttle and settings.kraken_throttle)
    return KrakenClient(exchange)


def open_session(params: Params, settings: Settings, client: KrakenClient, model_ref: str = "champion",
                 clock: Callable[[], float] = time.monotonic,
                 on_halt: Callable[[str], None] | None = None, alerter: Alerter | None = None) -> LiveSession:
    """Take the ledger (one trader per ledger), refuse withdraw-capable keys, load the model (spec-hash
    checked), wire broker + ledger + engine. Nonces come from the ledger's durable counter before the
    first private call. The engine starts from the ledger's risk state (equity peak, day, a loss-limit
    halt: a restart stays halted until `trader.ledger.resume_trading`); `on_halt` hears of a new one;
    `alerter` hears of the rest (see the module docstring)."""
    return _open("live", params, settings, client, model_ref, clock, on_halt, alerter)


def open_paper_session(params: Params, settings: Settings, client: KrakenClient, model_ref: str = "champion",
                       clock: Callable[[], float] = time.monotonic, on_halt: Callable[[str], None] | None = None,
                       alerter: Alerter | None = None) -> LiveSession:
    """Paper trading on live candles: `open_session` without the account. Public endpoints only (`client`
    may hold no key, e.g. `market.kraken.public_client`): no key check, nonce, balance, order, reconciliation
    or dead-man switch. Fills come from the simulated fill model (`params.fees`, Kraken's pair minimums from
    the exchange's table), cash starts at `params.trade.starting_cash` and is rebuilt from the ledger's fills
    on a restart. The ledger gets what a live one gets — decisions, intents, fills, balances, risk state,
    audit (`session_start` with mode=paper) — and must not hold live orders (LedgerModeError)."""
    return _open("paper", params, settings, client, model_ref, clock, on_halt, alerter)


def _open(mode: str, params: Params, settings: Settings, client: KrakenClient, model_ref: str,
          clock: Callable[[], float], on_halt: Callable[[str], None] | None, alerter: Alerter | None) -> LiveSession:
    ledger = Ledger(settings.ledger_uri, exclusive=True)
    try:
        _require_mode(ledger, mode, settings)
        return _wire_session(mode, params, settings, client, model_ref, clock, ledger, on_halt, alerter)
    except BaseException:
        ledger.close()
        raise


def _require_mode(ledger: Ledger, mode: str, settings: Settings) -> None:
    held = ledger_mode(ledger)
    if held is not None and held != mode:
        raise LedgerModeError(
            f"the ledger {safe_url(settings.ledger_uri)} holds {held} orders: a {mode} session must not mix with "
            f"them; point KRAKENFLOW_LEDGER_URL at another ledger for {mode} trading (e.g. "
            f"sqlite:///{settings.state_dir / f'{mode}-ledger.db'})")


def _wire_session(mode: str, params: Params, settings: Settings, client: KrakenClient, model_ref: str,
                  clock: Callable[[], float], ledger: Ledger, on_halt: Callable[[str], None] | None,
                  alerter: Alerter | None) -> LiveSession:
    if mode == "live":
        _check_key(settings, client, ledger)
    table = _instrument_table(params, settings, client, ledger)
    registry.configure(settings.tracking_uri, settings.mlflow_registry_uri)
    model = trading_model(registry.load_model(params.registry.model_name, model_ref))
    live = params.live
    broker = _broker(mode, params, client, ledger, model.version, table)
    strategy = ThresholdStrategy(params.trade.enter_threshold, params.trade.exit_threshold,
                                 params.trade.position_fraction)
    candle_ms = to_ms(params.data.timeframe)
    engine = Engine(model.spec, model.score, strategy, broker, risk=params.risk, candle_ms=candle_ms,
                    id_prefix=f"kf{int(time.time()) % 10**8}-",  # unique across restarts, ≤ 18 chars
                    model_version=model.version, on_halt=_halt_notice(on_halt), risk_memory=ledger)
    engine.restore_risk(ledger.risk_state())
    operator = ledger.operator_state()
    engine.paused, engine.no_buys = operator.halt, operator.no_buys
    loop = LiveLoop(client, engine, list(params.pairs), params.data.timeframe)
    crashed, session_id = _unended_session(ledger), uuid.uuid4().hex[:12]
    ledger.audit("session_start", {"session": session_id, "mode": mode, "model": model.name,
                                   "version": model.version, "url": settings.kraken_url, "halted": engine.risk_halt})
    log.info("%s session %s: %s v%s on %s", mode, session_id, model.name, model.version, ", ".join(params.pairs),
             extra={"event": "session_start", "mode": mode, "model_version": model.version, "session": session_id})
    if engine.risk_halt:
        log.error("still halted: %s (krakenflow resume clears it)", engine.risk_halt)
    # a pinned version (`--model 12`) is never swapped; an alias is followed
    watcher = None if model_ref.isdigit() else ModelWatcher(model.name, model_ref, live.model_check_every_s, clock)
    session = LiveSession(loop, broker, model.name, live, table, watcher, mode=mode, alerter=alerter,
                          session_id=session_id, operator=operator)
    if isinstance(broker, KrakenBroker):
        broker.on_lookup = _lookup_alert(session)
    session.telemetry.attach(session)
    if crashed:
        _alert(session, "trader_restarted", "warning", "restarted after a crash",
               f"the previous session ({crashed['mode']}, {crashed['model']} v{crashed['version']}, session "
               f"{crashed['session']}) never ended cleanly on the ledger {safe_url(settings.ledger_uri)}: a crash, "
               f"kill -9 or power loss. Open intents are looked up by cl_ord_id; nothing is resent.")
    return session


def _unended_session(ledger: Ledger) -> dict[str, Any] | None:
    """The last session_start's detail if no session_end matches it (None: it ended, or the ledger predates
    session_end rows, or no session ever started)."""
    starts = ledger.audit_trail("session_start")
    last = starts[-1][1] if starts else {}
    if "session" not in last:
        return None
    ended = {detail.get("session") for _, detail in ledger.audit_trail("session_end")}
    return None if last["session"] in ended else {"mode": "live", "model": "?", "version": "?", **last}


def _broker(mode: str, params: Params, client: KrakenClient, ledger: Ledger, version: int | None,
            table: instruments.InstrumentTable) -> KrakenBroker | PaperBroker:
    if mode == "paper":
        limits = {symbol: PairLimits.of(inst) for symbol, inst in table.instruments.items()}
        return PaperBroker.resume(params.trade.starting_cash, fill_model(params.fees, limits), ledger, version)
    lookup = LookupPolicy(params.live.lookup_window_s, params.live.min_lookups)
    return KrakenBroker(client, ledger, version, lookup=lookup)


def _check_key(settings: Settings, client: KrakenClient, ledger: Ledger) -> None:
    """Live only: nonces from the ledger's durable counter, and no withdraw-capable key."""
    nonce_name = f"kraken_nonce:{client.key_id()}"
    client.use_nonce(lambda floor: ledger.next_counter(nonce_name, at_least=floor))
    try:
        can_withdraw = client.key_can_withdraw()
    except (ExchangeUnavailable, RateLimited, InvalidNonce) as err:
        raise ExchangeUnavailable(f"cannot reach Kraken at {settings.kraken_url} ({err}); check "
                                  f"KRAKENFLOW_KRAKEN_URL and the network, then start again") from None
    if can_withdraw:
        raise UnsafeKeyError("refusing to trade: this API key may withdraw funds; create a trade-only key")


LOOKUP_OUTCOMES = {
    "found": "found on the exchange by its cl_ord_id and not resent",
    "not_found": "not on the exchange after repeated lookups: given up (a late fill would still be adopted)",
    "late_order_adopted": "turned up after it was given up on: adopted with its fills",
}


def _lookup_alert(session: LiveSession) -> Callable[[OrderIntent, str, str | None], None]:
    """A warning for each order whose AddOrder answer was lost (timeout, 5xx, garbled), saying how the lookup
    by cl_ord_id settled it: a person sees every moment the trader did not know what it had sent."""
    def send(intent: OrderIntent, outcome: str, txid: str | None) -> None:
        _alert(session, "order_answer_lost", "warning", f"order {intent.client_id}: answer lost, {outcome}",
               f"{intent.side.value} {intent.quantity:.8f} {intent.pair}: {LOOKUP_OUTCOMES.get(outcome, outcome)}"
               f"{f' (txid {txid})' if txid else ''}.")
    return send


def _halt_notice(then: Callable[[str], None] | None) -> Callable[[str], None]:
    """What the engine calls when a loss limit halts it: log, then `then` (e.g. an alert), whose failure
    must not stop the trading loop (the halt and its flatten orders are already in the ledger)."""
    def notice(reason: str) -> None:
        log.error("halted: %s; flattening every position", reason)
        if then is not None:
            try:
                then(reason)
            except Exception:
                log.exception("the on_halt callback failed (the halt stands)")
    return notice


def _instrument_table(params: Params, settings: Settings, client: KrakenClient,
                      ledger: Ledger) -> instruments.InstrumentTable:
    """The exchange's own pair facts, refreshed at every start into the state dir (the cached copy when the
    exchange does not answer); every traded pair must be in it."""
    settings.ensure_state_dir()
    table, origin = instruments.refresh_or_cached(client, settings.instruments_cache, settings.kraken_url)
    table.require(params.pairs)
    ledger.audit("instruments", {"origin": origin, "pairs": len(table.instruments)})
    log.info("instrument table: %d pairs, %s", len(table.instruments), origin)
    return table


def reconcile(session: LiveSession, halt_above_usd: float | None = None) -> Reconciliation:
    """Ledger vs exchange now; `halt_above_usd` overrides params (inf = adopt the exchange's positions).
    A new halt is a critical alert, an adjustment a warning. Live sessions only (paper has no account)."""
    broker = session.broker
    if not isinstance(broker, KrakenBroker):
        raise TypeError("a paper session has no exchange account to reconcile with")
    limit = session.live.reconcile_halt_usd if halt_above_usd is None else halt_above_usd
    halted_before = session.engine.halted
    result = reconcile_with_exchange(broker, session.loop.client, session.engine, session.loop.pairs, limit,
                                     session.instruments.base_assets())
    session.telemetry.reconciled(result)
    drifts = ", ".join(f"{d.pair} ledger {d.ledger:g} vs exchange {d.exchange:g}" for d in result.drifts)
    if result.halt and halted_before != result.reason:
        _alert(session, "reconcile_halt", "critical", "reconciliation halted trading",
               f"{result.reason}. {drifts}. After a check: `krakenflow trade --mode live --adopt-exchange-positions`.")
    elif not result.halt and result.drifts:
        _alert(session, "reconcile_adjusted", "warning", "ledger adjusted to the exchange",
               f"{result.reason}: {drifts} (audited as reconcile_adjust).")
    return result


def _paper_books(session: LiveSession) -> None:
    """Paper's stand-in for reconciliation: the simulated account's cash and positions as the ledger's
    balances (what the dashboard shows as the account), keyed like Kraken's (USD, XRP, DOGE)."""
    bases = session.instruments.base_assets()
    session.broker.ledger.set_balances({"USD": session.broker.cash,
                                        **{bases[p]: session.broker.position(p) for p in session.loop.pairs}})


def _check_books(session: LiveSession, halt_above_usd: float | None = None) -> None:
    if session.mode == "paper":
        _paper_books(session)
    else:
        reconcile(session, halt_above_usd)


def maybe_reload(session: LiveSession) -> bool:
    """Between candles: swap in the alias's new version if it is safe; True if swapped."""
    watcher = session.watcher
    version = watcher.new_version(session.model_version, session.operator.pinned_version) if watcher else None
    if watcher is None or version is None:
        return False
    ledger, engine, loop = session.broker.ledger, session.engine, session.loop
    try:
        model = load_for_swap(session.model_name, version)
        same_spec = model.spec.hash == engine.spec.hash
        states = None if same_spec else warm_states(model.spec, loop.client, loop.pairs, loop.timeframe, loop.last_ts)
    except ReloadRefused as err:
        watcher.refused.add(version)
        ledger.audit("model_reload_refused", {"version": version, "reason": str(err)})
        log.warning("model reload refused, v%s keeps trading: %s", session.model_version, err,
                    extra={"event": "model_reload_refused", "model_version": session.model_version,
                           "refused_version": version})
        _alert(session, "model_refused", "warning", f"model v{version} refused",
               f"{err}; v{session.model_version} keeps trading (audited as model_reload_refused).")
        return False
    previous = session.model_version
    engine.swap_model(model.spec, model.score, model.version, states)
    session.broker.model_version = version  # intents from now on name the new version
    ledger.audit("model_reloaded", {"from": previous, "to": version, "same_spec": same_spec})
    log.info("model %s: v%s → v%s between candles", session.model_name, previous, version,
             extra={"event": "model_reload", "from_version": previous, "model_version": version,
                    "same_spec": same_spec})
    _alert(session, "model_reloaded", "info", f"model v{previous} → v{version}",
           f"{session.model_name} v{version} trades from the next candle on (features "
           f"{'unchanged' if same_spec else 'changed, warmed on the same candles'}).")
    return True


class StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes the current poll, then returns (state is in the ledger).
    A second SIGTERM while a poll is stuck exits at once: every intent is durable, a restart looks it up."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self, signum: int, _frame: object) -> None:
        if self.stopped:
            log.error("second signal %s: exiting now (open intents are looked up on the next start)", signum)
            os._exit(128 + signum)
        log.info("signal %s: stopping after this poll", signum)
        self.stopped = True

    def install(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self)
        return self


TRANSIENT = (ExchangeUnavailable, RateLimited, BadMarketData, InvalidNonce)
"""Exchange trouble a later poll may not meet: keep state, back off, try again."""


def run(session: LiveSession, poll_seconds: float, max_polls: int | None = None,
        after_poll: Callable[[int], None] | None = None, stop: StopFlag | None = None,
        clock: Callable[[], float] = time.monotonic, adopt_exchange_positions: bool = False) -> None:
    """Warm up, reconcile, then poll until SIGTERM or `max_polls`. Between polls: hot-swap a new @champion,
    record which version took each decision, reconcile every `live.reconcile_every_s`, and re-arm Kraken's
    dead-man switch (`live.dead_man_s`) so a hung process leaves no open orders."""
    stop = stop or StopFlag().install()
    if not _start_up(session, poll_seconds, stop, adopt_exchange_positions):
        return
    next_reconcile = clock() + session.live.reconcile_every_s
    polls = 0
    while not stop.stopped and (max_polls is None or polls < max_polls):
        session.busy_since_unix = time.time()
        try:
            next_reconcile = _one_poll(session, clock, next_reconcile)
            _poll_succeeded(session)
        except ClockWentBack as err:
            _halt(session, "clock_went_back", str(err))
            _poll_failed(session, err)
        except TRANSIENT as err:  # the exchange is down or slow: keep state, back off, try again
            _poll_failed(session, err)
        finally:
            _record_decisions(session)
            session.busy_since_unix = 0.0
        _note_poll(session)
        polls += 1
        if after_poll is not None:
            after_poll(polls)
        elif poll_seconds > 0:
            time.sleep(poll_seconds * min(2**session.failures_in_a_row, 16))


def _start_up(session: LiveSession, poll_seconds: float, stop: StopFlag, adopt: bool) -> bool:
    """Warm up and reconcile, retrying through exchange trouble with backoff: a restart always comes up
    (or stops on SIGTERM). False if stopped before it could."""
    attempt = 0
    while not stop.stopped:
        session.busy_since_unix = time.time()
        try:
            warmed = session.loop.warm_up()
            _check_books(session, float("inf") if adopt else None)
            log.info("warmed up on %s candles; %s; trading", warmed,
                     "reconciled" if session.mode == "live" else "paper account ready")
            return True
        except TRANSIENT as err:
            attempt += 1
            _poll_failed(session, err, kind="start_up_failed")
        finally:
            session.busy_since_unix = 0.0
        _note_poll(session)
        time.sleep(min(max(poll_seconds, 0.05) * 2**attempt, 60.0))
    return False


def _poll_succeeded(session: LiveSession) -> None:
    if session.failures_in_a_row >= FAILED_POLLS_ALERT:
        log.info("polls reach the exchange again after %s failures", session.failures_in_a_row)
    session.failures_in_a_row, session.last_error = 0, ""
    session.last_ok_poll_unix = time.time()
    session.telemetry.polled(session.busy_since_unix, ok=True)


def _poll_failed(session: LiveSession, err: Exception, kind: str = "poll_failed") -> None:
    session.failures_in_a_row += 1
    session.last_error = f"{type(err).__name__}: {err}"
    session.telemetry.polled(session.busy_since_unix, ok=False)
    session.broker.ledger.audit(kind, {"error": str(err), "in_a_row": session.failures_in_a_row})
    log.warning("%s (%s in a row): %s", kind.replace("_", " "), session.failures_in_a_row, err,
                extra={"event": kind, "mode": session.mode, "in_a_row": session.failures_in_a_row})
    if session.failures_in_a_row == FAILED_POLLS_ALERT:  # once per streak
        _alert(session, "failed_polls", "warning", f"{FAILED_POLLS_ALERT} polls failed in a row",
               f"last error: {session.last_error}. The trader keeps state and retries with backoff; no candle "
               f"is lost or fed twice.")


def _halt(session: LiveSession, kind: str, reason: str) -> None:
    if not session.engine.halted:
        session.engine.halted = reason
        session.broker.ledger.audit(kind, {"reason": reason})
        log.error("halted: %s", reason)
        _alert(session, "halt", "critical", "trading halted", f"{reason} (audited as {kind}).")


def _one_poll(session: LiveSession, clock: Callable[[], float], next_reconcile: float) -> float:
    """Reload between candles, poll (sync once, then feed new candles), watch for stale data, reconcile when
    due, re-arm the dead-man switch (paper: record the simulated account instead of the last two)."""
    apply_commands(session)
    maybe_reload(session)
    decisions = session.loop.poll()
    _log_poll(session, decisions)
    _watch_stale(session)
    if session.mode == "paper":
        _paper_books(session)
        return next_reconcile
    if clock() >= next_reconcile:
        reconcile(session)
        next_reconcile = clock() + session.live.reconcile_every_s
    if session.live.dead_man_s > 0:
        session.loop.client.cancel_all_after(session.live.dead_man_s)
    return next_reconcile


def apply_commands(session: LiveSession) -> None:
    """The operator's queued commands (the control API), in order, between two polls: each is applied or
    refused, and its outcome, the operator state it leaves and an audit row are written in one transaction."""
    ledger = session.broker.ledger
    for command in ledger.pending_commands():
        try:
            command = Command(command.id, command.kind, validated(command.kind, command.args, session.loop.pairs),
                              command.who)
            result, state = _apply(session, command)
            status = "done"
        except CommandRefused as err:
            result, state, status = str(err), None, "refused"
        ledger.finish_command(command, status, result, state)
        if state is not None:
            session.operator = state
        log.warning("operator %s by %s: %s (%s)", command.kind, command.who, result, status,
                    extra={"event": "operator_command", "command": command.kind, "status": status})
        _alert(session, "operator_command", "warning", f"operator {command.kind.replace('_', ' ')} ({status})",
               f"{result} — requested by {command.who} (command {command.id}, audited as operator_{command.kind}).")


def _apply(session: LiveSession, command: Command) -> tuple[str, OperatorState]:
    """One command's effect on the engine; what it did, and the operator state it leaves."""
    engine, state = session.engine, next_state(session.operator, command)
    kind, reason = command.kind, command.args.get("reason", "")
    if kind == "resume":
        return _resume(session, command), state
    if kind == "flatten":
        if engine.halted and engine.halted != engine.risk_halt:
            raise CommandRefused(f"halted by “{engine.halted}”: the ledger is not trusted, so no order is sent; "
                                 "check the books and sell by hand or restart the trader")
        pairs = session.loop.pairs if command.args["pair"] == "all" else [command.args["pair"]]
        sold = [pair for pair in pairs if engine.flatten_now(
            pair, session.loop.last_ts.get(pair, 0), f"operator flatten by {command.who}: {reason}") is not None]
        return (f"market sell sent for {', '.join(sold)}" if sold else "nothing to sell (flat, or an order is "
                "pending)"), state
    if kind in ("reload_model", "pin_model", "unpin_model"):
        if session.watcher is None:
            raise CommandRefused("this trader was started on a fixed version (--model N): restart it on an alias")
        previous, session.operator = session.operator, state
        session.watcher.check_now()
        swapped = maybe_reload(session)
        if kind == "pin_model" and session.model_version != state.pinned_version:
            session.operator = previous
            raise CommandRefused(f"v{state.pinned_version} cannot trade (see the model_reload_refused audit row); "
                                 f"v{session.model_version} trades on")
        return (f"now trading v{session.model_version}" + ("" if swapped else " (no other version to swap in)")
                + (", pinned" if state.pinned_version else "")), state
    engine.paused, engine.no_buys = state.halt, state.no_buys
    return {"halt": f"halted: {state.halt}", "stop_buying": state.no_buys,
            "allow_buying": "buying allowed again"}[kind], state


def _resume(session: LiveSession, command: Command) -> str:
    """Clear an operator halt and a loss-limit halt (as `krakenflow resume` does for a stopped trader: the
    equity peak and day start restart). Any other halt (the ledger disagreed with the exchange, the clock went
    back) needs a look at the books and a restart."""
    engine = session.engine
    if engine.halted and engine.halted != engine.risk_halt:
        raise CommandRefused(f"halted by “{engine.halted}”: check the books and restart the trader; resume clears "
                             "operator and loss-limit halts only")
    cleared = [why for why in (engine.paused, engine.risk_halt) if why]
    engine.paused = ""
    if engine.risk_halt:
        before = engine.risk_snapshot()
        engine.halted = ""
        engine.risk_halt, engine.halted_at_ms, engine.halted_until_ms = "", None, None
        engine.restore_risk(type(before)())
        session.broker.ledger.save_risk_state(engine.risk_snapshot(), ("trading_resumed", {
            "who": command.who, "reason": command.args["reason"], "halt_cleared": before.halted,
            "halted_at_ms": before.halted_at_ms, "peak_equity_dropped": before.peak_equity}))
    return f"resumed: cleared {'; '.join(cleared)}" if cleared else "not halted: nothing to clear"


def _log_poll(session: LiveSession, decisions: list[Decision]) -> None:
    acted = [d for d in decisions if d.action in ("buy", "sell", "blocked")]
    backlog = sum(1 for d in decisions if d.reason == BACKLOG)
    newest = session.loop.newest_ts()
    newest_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(newest / 1000)) if newest is not None else None
    session.telemetry.decided(decisions, session.loop.clock.now_ms(), session.engine.candle_ms)
    equity = _equity_now(session)
    log.info("poll %s: %s new candle(s)%s, newest %s, equity %.2f USD%s", ", ".join(session.loop.pairs),
             len(decisions), f" ({backlog} replayed as warm-up)" if backlog else "", newest_iso, equity,
             "".join(f"; {d.action} {d.pair} p={d.prob:.3f} {d.reason}".rstrip() for d in acted),
             extra={"event": "poll", "mode": session.mode, "pairs": list(session.loop.pairs),
                    "newest_candle": newest_iso, "newest_candle_ts": newest, "decisions": len(decisions),
                    "acted": len(acted), "backlog": backlog, "equity": equity,
                    "model_version": session.model_version, "halted": session.engine.halted})


def _equity_now(session: LiveSession) -> float:
    """Cash plus positions at the last closes (USD), without a network call after a sync; NaN if unknown."""
    with contextlib.suppress(*TRANSIENT):
        return session.engine.equity()
    return float("nan")


def _watch_stale(session: LiveSession) -> None:
    """A warning alert when the newest candle turns stale by the exchange's clock, once per stale streak."""
    risk = session.engine.risk
    why = session.loop.stale_data(risk, session.engine.candle_ms) if risk is not None else ""
    if why and not session.stale:
        log.warning("market data stale: %s", why, extra={"event": "stale_data", "mode": session.mode,
                                                         "reason": why})
        _alert(session, "stale_data", "warning", "stale market data",
               f"{why}; no order is placed on a stale candle until fresh ones arrive.")
    elif session.stale and not why:
        log.info("market data fresh again", extra={"event": "stale_data_over", "mode": session.mode})
    session.stale = why


def _alert(session: LiveSession, kind: str, severity: Severity, title: str, body: str) -> None:
    """Send through the session's alerter, if any (it never raises). Imported lazily: a trader without
    alerts never loads Apprise. Kept in the ledger too (audit `alert`): the console's recent alerts."""
    try:
        session.broker.ledger.audit("alert", {"kind": kind, "severity": severity, "title": title, "body": body})
    except Exception:
        log.exception("could not keep the alert %r in the ledger", title)
    if session.alerter is None:
        return
    from core.alerts import Alert

    session.alerter.send(Alert(kind, severity, f"krakenflow {session.mode} trader: {title}", body))


def _record_decisions(session: LiveSession) -> None:
    """Move the engine's decisions into the ledger, stamped with the version that took them. Buys and
    sells are already there: each was written with its intent, in one transaction."""
    engine = session.engine
    session.broker.ledger.record_decisions((d for d in engine.decisions if d.action not in ORDER_ACTIONS),
                                           engine.model_version)
    engine.decisions.clear()


ORDER_ACTIONS = ("buy", "sell")


def _note_poll(session: LiveSession) -> None:
    """Figures the status thread may read: it must never call the exchange itself (one caller per key
    keeps nonces in order), so the trading thread leaves them here after each poll. No network call:
    the broker's cash is its last balance with every recorded fill applied."""
    with contextlib.suppress(*TRANSIENT):
        session.last_cash, session.last_equity = session.broker.cash, session.engine.equity()
        _mark_equity(session)
    session.last_poll_unix = time.time()
    session.telemetry.noted(session)


def _mark_equity(session: LiveSession) -> None:
    """One equity mark per new candle into the ledger (the console's equity and drawdown curve)."""
    newest = max(session.loop.last_ts.values(), default=-1)
    if newest > session.equity_marked_ts and session.last_equity == session.last_equity:  # not NaN
        session.broker.ledger.record_equity(newest, session.last_equity, session.last_cash)
        session.equity_marked_ts = newest


def live_view(session: LiveSession, now: float | None = None) -> LiveView:
    now = time.time() if now is None else now
    busy_s = now - session.busy_since_unix if session.busy_since_unix else 0.0
    halted = session.engine.halted or session.engine.paused
    problems = health_problems(halted, session.failures_in_a_row, session.last_error, busy_s, session.live.watchdog_s)
    return LiveView(session.mode, session.model_name, session.model_version, session.last_equity, session.last_cash,
                    halted, session.last_poll_unix, session.last_ok_poll_unix,
                    session.failures_in_a_row, session.last_error, busy_s, tuple(problems))


class StatusPortError(OSError):
    """The status port cannot be served (in use, or not ours to bind)."""


StatusApp = Callable[[Callable[[], dict[str, Any]], Callable[[], dict[str, Any]]], Any]
"""Builds the ASGI app a trader serves from its snapshot and its live view (the CLI passes the console's)."""


def serve_status(session: LiveSession, host: str, port: int, make: StatusApp | None = None) -> threading.Thread:
    """The dashboard, /status and /metrics of this trader on a daemon thread (read-only; it shares the
    ledger's thread-safe connection pool). The port is bound here, before anyone is told the URL, so a
    port in use is an error, not a silent page that never answers. Imported lazily: a trader without a
    status port never loads FastAPI."""
    import socket

    import uvicorn

    from trader.api import make_app

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections queue from now on, even before uvicorn's loop accepts them
    except OSError as err:
        sock.close()
        raise StatusPortError(f"cannot serve the status page on {host}:{port} ({err.strerror}); "
                              f"pick another --status-port or stop what uses it") from None
    pairs = list(session.loop.pairs)

    def snap() -> dict[str, Any]:
        return snapshot(session.broker.ledger, pairs, live_view(session))

    app = (make(snap, lambda: vars(live_view(session))) if make is not None
           else make_app(snap, f"krakenflow trader — {session.model_name}"))
    app = session.telemetry.serve_metrics(app, snap)  # /metrics: this session's events, the snapshot's figures
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="status-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread
