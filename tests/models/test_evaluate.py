import numpy as np
import pytest

from models.evaluate import auc, log_loss


def test_auc_perfect_random_and_ties() -> None:
    y = np.array([0, 0, 1, 1])
    assert auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)  # random scores: any data works for an identity check
    y = rng.integers(0, 2, 200)
    s = rng.random(200).round(2)
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        len(pos) * len(neg))
    assert auc(y, s) == pytest.approx(pairwise)


def test_log_loss_of_confident_right_answers_is_small() -> None:
    assert log_loss(np.array([1, 0]), np.array([0.99, 0.01])) < 0.02
