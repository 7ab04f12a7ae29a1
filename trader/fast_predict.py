"""Single-row LightGBM prediction through the C API fast path (LGBM_BoosterPredictForMatSingleRowFast).

`Booster.predict` on a 1×n array costs ~50 µs per call in Python overhead; the fast path reuses one
prepared config and one input buffer, ~13 µs (see BENCHMARKS.md). Same numbers, proven by tests.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np
from lightgbm.basic import _LIB, _safe_call

_PREDICT_NORMAL = 0      # C_API_PREDICT_NORMAL: probabilities for a binary objective
_DTYPE_FLOAT64 = 1       # C_API_DTYPE_FLOAT64


class FastScorer:
    """Callable: feature vector → model output, for one booster with `n_features` inputs."""

    def __init__(self, booster: Any) -> None:
        self._booster = booster  # keep the booster (and its C handle) alive as long as we are
        self.n_features = booster.num_feature()
        self._row = np.zeros(self.n_features, dtype=np.float64)
        self._out = np.zeros(1, dtype=np.float64)
        self._out_len = ctypes.c_int64(0)
        self._config = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(_PREDICT_NORMAL), ctypes.c_int(0), ctypes.c_int(-1),
            ctypes.c_int(_DTYPE_FLOAT64), ctypes.c_int32(self.n_features), ctypes.c_char_p(b""),
            ctypes.byref(self._config),
        ))
        self._row_ptr = self._row.ctypes.data_as(ctypes.c_void_p)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._predict = _LIB.LGBM_BoosterPredictForMatSingleRowFast

    def __call__(self, features: Sequence[float]) -> float:
        if len(features) != self.n_features:
            raise ValueError(f"model expects {self.n_features} features, got {len(features)}")
        self._row[:] = features
        _safe_call(self._predict(self._config, self._row_ptr, ctypes.byref(self._out_len), self._out_ptr))
        return float(self._out[0])

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            _LIB.LGBM_FastConfigFree(config)
