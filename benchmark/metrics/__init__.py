"""Pure numpy metric functions: no I/O, no side effects."""

from benchmark.metrics.classification import (
    accuracy,
    agreement,
    certainty_histogram,
    classification_summary,
    confusion_matrix,
    mean_normalized_entropy,
    normalized_entropy,
    output_histogram,
    per_class_report,
    precision_recall_fscore_support,
    recall_change,
    top_k_accuracy,
    wilson_interval,
)

__all__ = [
    "accuracy", "agreement", "certainty_histogram", "classification_summary", "confusion_matrix",
    "mean_normalized_entropy", "normalized_entropy", "output_histogram",
    "per_class_report", "precision_recall_fscore_support", "recall_change", "top_k_accuracy",
    "wilson_interval",
]
