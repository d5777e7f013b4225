"""Metrics and reports, one kind per kind of target: classes, binary labels, ordered levels, scores.

Every number comes from scikit-learn or SciPy; these modules gather them into reports that print
as tables and save as JSON, with one interface (`Report`).
"""

from .base import MultiTaskReport, Report, lower_is_better, metrics_table, report_from_dict
from .bootstrap import bootstrap_intervals
from .classification import ClassificationReport, balanced_class_weights, classification_report, format_table
from .clinical import choose_threshold, expected_calibration_error, reliability_curve, roc_points
from .multilabel import MultilabelReport, best_f1_thresholds, multilabel_report
from .ordinal import OrdinalReport, ordinal_report
from .regression import RegressionReport, regression_report

__all__ = [
    "ClassificationReport",
    "MultiTaskReport",
    "MultilabelReport",
    "OrdinalReport",
    "RegressionReport",
    "Report",
    "balanced_class_weights",
    "best_f1_thresholds",
    "bootstrap_intervals",
    "choose_threshold",
    "classification_report",
    "expected_calibration_error",
    "format_table",
    "lower_is_better",
    "metrics_table",
    "multilabel_report",
    "ordinal_report",
    "regression_report",
    "reliability_curve",
    "report_from_dict",
    "roc_points",
]
