"""Operator controls: what a person may tell a running trader through the control API (halt, resume, flatten
one pair or all, stop or allow buying, reload or pin a model version), as plain data.

The API validates a command and queues it in the ledger; the trader applies it between two polls, records
what became of it and the operator state it leaves (a restart keeps that), all with an audit row. Here: the
command kinds, their validation and the state each leaves — pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

KINDS = ("halt", "resume", "flatten", "stop_buying", "allow_buying", "reload_model", "pin_model", "unpin_model")
NEEDS_REASON = ("halt", "resume", "flatten", "stop_buying")


class CommandRefused(ValueError):
    """A command that cannot be applied; the message says why and what to send instead."""


@dataclass(frozen=True)
class OperatorState:
    halt: str = ""
    """Non-empty: why an operator halted trading (no orders; a loss-limit flatten still sells)."""
    no_buys: str = ""
    """Non-empty: why buying is stopped (sells and exits go on)."""
    pinned_version: int | None = None
    """A registry version to trade instead of following the alias (None: follow `@champion`)."""


@dataclass(frozen=True)
class Command:
    id: int
    kind: str
    args: dict[str, Any]
    who: str


def validated(kind: str, args: dict[str, Any], pairs: Sequence[str]) -> dict[str, Any]:
    """The command's arguments, checked; CommandRefused naming the problem and the fix otherwise."""
    if kind not in KINDS:
        raise CommandRefused(f"unknown command {kind!r}: one of {', '.join(KINDS)}")
    unknown = sorted(set(args) - {"reason", "pair", "version"})
    if unknown:
        raise CommandRefused(f"{kind}: unknown argument(s) {', '.join(unknown)} (reason, pair, version)")
    out: dict[str, Any] = {}
    reason = args.get("reason")
    if kind in NEEDS_REASON:
        if not isinstance(reason, str) or not reason.strip():
            raise CommandRefused(f"{kind} needs a reason (kept in the audit trail)")
        out["reason"] = " ".join(reason.split())[:500]
    if kind == "flatten":
        pair = args.get("pair") or "all"
        if pair != "all" and pair not in pairs:
            raise CommandRefused(f"flatten: {pair!r} is not traded here; one of {', '.join(pairs)} or 'all'")
        out["pair"] = pair
    if kind == "pin_model":
        version = args.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CommandRefused(f"pin_model needs a registry version ≥ 1 (got {version!r})")
        out["version"] = version
    return out


def next_state(state: OperatorState, command: Command) -> OperatorState:
    """The operator state after `command` (flatten and reload leave it as it is)."""
    reason = command.args.get("reason", "")
    if command.kind == "halt":
        return replace(state, halt=f"operator halt by {command.who}: {reason}")
    if command.kind == "resume":
        return replace(state, halt="")
    if command.kind == "stop_buying":
        return replace(state, no_buys=f"buying stopped by {command.who}: {reason}")
    if command.kind == "allow_buying":
        return replace(state, no_buys="")
    if command.kind == "pin_model":
        return replace(state, pinned_version=int(command.args["version"]))
    if command.kind == "unpin_model":
        return replace(state, pinned_version=None)
    return state
