"""Signal → desired position. Pure: hysteresis between an entry and an exit probability."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ThresholdStrategy:
    """Go long when P(profitable after fees) ≥ enter; go flat when it drops below exit."""

    enter: float
    exit: float
    position_fraction: float

    def wants_long(self, prob: float, is_long: bool) -> bool:
        if math.isnan(prob):
            return False
        return prob >= self.exit if is_long else prob >= self.enter
