import math

from core.metrics import max_drawdown, period_returns, sharpe, total_return


def test_max_drawdown_is_largest_peak_to_trough() -> None:
    assert max_drawdown([100, 120, 90, 130, 104]) == 0.25


def test_flat_equity_has_zero_drawdown_and_sharpe() -> None:
    assert max_drawdown([5, 5, 5]) == 0.0
    assert sharpe(period_returns([5, 5, 5]), 8760) == 0.0


def test_total_return_and_sharpe_sign() -> None:
    eq = [100.0, 101.0, 100.5, 102.0]
    assert math.isclose(total_return(eq), 0.02)
    assert sharpe(period_returns(eq), 8760) > 0
