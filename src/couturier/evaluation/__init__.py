"""Model evaluation shared by training, the registry's gates and monitoring.

>>> ev = evaluate(y_true, y_score, slices={"brand": brands})   # doctest: +SKIP
>>> ev.overall["pr_auc"], ev.slices["brand=3"]["pr_auc"]       # doctest: +SKIP
"""

from couturier.evaluation._metrics import (
    Evaluation,
    evaluate,
    expected_calibration_error,
    recall_at_fpr,
)
from couturier.evaluation._plots import plot_curves

__all__ = ["Evaluation", "evaluate", "expected_calibration_error", "plot_curves", "recall_at_fpr"]
