"""The experiments app's pages, one module per concern."""

from experiments.views.sections import experiments_index, review_index
from experiments.views.suites import (
    suite_check,
    suite_detail,
    suite_download,
    suite_edit,
    suite_new,
    suite_task,
    suites_index,
)

__all__ = [
    "experiments_index",
    "review_index",
    "suite_check",
    "suite_detail",
    "suite_download",
    "suite_edit",
    "suite_new",
    "suite_task",
    "suites_index",
]
