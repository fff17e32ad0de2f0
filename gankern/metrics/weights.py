"""Locating and loading pretrained weights from local files (gankern never downloads).

The implementation lives in :mod:`gankern.pretrained`, shared with the models; the metrics'
extractors keep their files in ``<cache>/metrics/``.
"""

from gankern.pretrained import WeightsNotFoundError, load_state_dict_strict, resolve_weights_path

__all__ = ["WeightsNotFoundError", "load_state_dict_strict", "resolve_weights_path"]
