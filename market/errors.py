"""Our own exchange errors: nothing outside market/kraken.py ever sees a ccxt exception."""

from __future__ import annotations


class ExchangeError(Exception):
    """Base for every exchange failure; the message says what to do."""


class ExchangeUnavailable(ExchangeError):
    """Network trouble, 5xx or EService:Unavailable/Busy on an idempotent call (safe to retry)."""


class RateLimited(ExchangeError):
    """EAPI:Rate limit exceeded / HTTP 429: slow down."""


class AuthenticationFailed(ExchangeError):
    """Invalid key, signature or permission: fix the credentials; retrying will not help."""


class InvalidNonce(ExchangeError):
    """EAPI:Invalid nonce: another process uses this key, or the nonce went backwards."""


class InsufficientFunds(ExchangeError):
    """EOrder:Insufficient funds."""


class OrderRejected(ExchangeError):
    """The exchange refused the order outright (invalid arguments, minimum not met, unknown pair)."""


class OrderNotFound(ExchangeError):
    """EOrder:Unknown order."""


class OrderOutcomeUnknown(ExchangeError):
    """AddOrder timed out or failed with 5xx/EService after it may have reached the matching engine.
    Never resend: look the order up by its client id first."""

    def __init__(self, client_id: str, cause: str) -> None:
        super().__init__(f"order {client_id}: outcome unknown ({cause}); look it up by cl_ord_id, do not resend")
        self.client_id = client_id


class BadMarketData(ExchangeError):
    """The exchange answered with data we cannot trust (empty, malformed, out of order)."""
