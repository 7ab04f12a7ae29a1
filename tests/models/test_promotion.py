from models.promotion import decide_first_rule


def test_first_model_bootstraps_champion() -> None:
    assert decide_first_rule({"holdout_n_round_trips": 0}, None, 5).decision == "promote"


def test_better_challenger_is_promoted_worse_is_kept() -> None:
    champ = {"holdout_net_return": 0.01}
    better = {"holdout_net_return": 0.02, "holdout_n_round_trips": 10}
    worse = {"holdout_net_return": -0.02, "holdout_n_round_trips": 10}
    assert decide_first_rule(better, champ, 5).decision == "promote"
    assert decide_first_rule(worse, champ, 5).decision == "keep"


def test_too_few_trades_is_insufficient_evidence() -> None:
    d = decide_first_rule({"holdout_net_return": 1.0, "holdout_n_round_trips": 2}, {"holdout_net_return": 0}, 5)
    assert d.decision == "insufficient_evidence" and "2 holdout round trips" in d.reason


def test_tie_keeps_the_champion() -> None:
    same = {"holdout_net_return": 0.01, "holdout_n_round_trips": 10}
    assert decide_first_rule(same, same, 5).decision == "keep"
