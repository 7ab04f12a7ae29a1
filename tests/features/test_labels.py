import math

import numpy as np

from features.labels import direction_label, forward_net_log_return


def test_forward_return_is_net_of_taker_fee_both_ways() -> None:
    close = np.array([1.0, 1.01, 1.02, 1.0])
    net = forward_net_log_return(close, horizon=2, taker_fee=0.004)
    assert math.isclose(net[0], math.log(1.02) + 2 * math.log(0.996))
    assert np.isnan(net[-2:]).all()


def test_label_is_one_only_when_trade_clears_fees() -> None:
    close = np.array([1.0, 1.005, 1.02])
    label = direction_label(forward_net_log_return(close, 1, 0.004), 0.0)
    assert label[0] == 0.0  # +0.5 % does not pay 0.8 % round-trip fees
    assert label[1] == 1.0  # +1.5 % does
    assert np.isnan(label[2])
