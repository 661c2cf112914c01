"""Table -> feature matrix: numeric columns as they are, categorical ones one-hot.

Shared by the ``breast-cancer-survival`` task and ``csv:PATH`` user data. Which columns may be
encoded (and the errors for those that may not) is the caller's business; this module only
encodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["encode_features"]


def encode_features(frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Encode every column of ``frame`` as numbers.

    Numeric columns become one feature each. Any other column becomes one 0/1 indicator per
    category, named ``column=category``: a pandas ``Categorical`` keeps its declared categories
    (also those no row uses, so the width does not depend on the data), other columns use
    their sorted distinct values.

    Returns:
        ``x`` ``[N, F]`` float64, the ``F`` feature names, and ``[F]`` boolean mask of the
        numeric features (the ones worth standardizing; indicators stay 0/1).
    """
    import pandas as pd  # late: keeps `import archsmith.tasks` light

    blocks: list[np.ndarray] = []
    names: list[str] = []
    numeric: list[bool] = []
    for col in frame.columns:
        series = frame[col]
        if not pd.api.types.is_numeric_dtype(series):
            if isinstance(series.dtype, pd.CategoricalDtype):
                categories = list(series.cat.categories)
            else:
                categories = sorted(series.unique().tolist(), key=str)
            values = series.to_numpy()
            blocks.append(np.stack([values == c for c in categories], axis=1).astype(np.float64))
            names.extend(f"{col}={c}" for c in categories)
            numeric.extend([False] * len(categories))
        else:
            blocks.append(series.to_numpy(dtype=np.float64)[:, None])
            names.append(str(col))
            numeric.append(True)
    x = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0))
    return x, tuple(names), np.array(numeric, dtype=bool)
