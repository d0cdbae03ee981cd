"""Functions that read the experiments app's data for pages and commands."""

from dataclasses import dataclass

from django.db.models import Prefetch

from experiments.models import Task, TaskSuite


@dataclass
class SuiteRow:
    suite: TaskSuite
    tasks: int
    families: int
    train: int
    test: int


def task_variant_counts(task):
    """(train, test) variants of a stored Task: a held-out family has no train variants."""
    counts = task.spec.get("variants") or {}
    train = 0 if task.family_heldout else int(counts.get("train", 0))
    return train, int(counts.get("test", 0))


def suite_rows():
    """Every suite with its number of tasks, families (scenarios) and train/test variants, in
    two queries whatever the number of suites and tasks."""
    tasks = Task.objects.only("id", "suite_id", "scenario", "spec", "split_rule")
    rows = []
    for suite in TaskSuite.objects.prefetch_related(Prefetch("tasks", queryset=tasks)).defer("source"):
        counts = [task_variant_counts(t) for t in suite.tasks.all()]
        rows.append(
            SuiteRow(
                suite=suite,
                tasks=len(counts),
                families=len({t.scenario for t in suite.tasks.all()}),
                train=sum(c[0] for c in counts),
                test=sum(c[1] for c in counts),
            )
        )
    return rows
