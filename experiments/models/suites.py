"""Task suites as stored: the YAML source of a suite and each of its tasks, parsed, and each
task's last check."""

import hashlib
import json

from django.conf import settings
from django.db import models


class TaskSuite(models.Model):
    name = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True, default="")
    source = models.TextField(help_text="the suite's YAML, exactly as it was saved")
    version = models.PositiveIntegerField(default=1, help_text="the version the YAML declares")
    source_hash = models.CharField(max_length=64, help_text="sha256 of the source")
    builtin = models.BooleanField(default=False, help_text="shipped with RLVR Studio")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def spec(self):
        """The suite as a SuiteSpec, parsed again from its source."""
        from experiments.suites import load_suite

        return load_suite(self.source)


class Task(models.Model):
    suite = models.ForeignKey(TaskSuite, on_delete=models.CASCADE, related_name="tasks")
    task_id = models.CharField(max_length=80, help_text="the task's id within its suite")
    position = models.PositiveIntegerField(default=0)
    scenario = models.CharField(max_length=80, help_text="the task's family")
    seed = models.CharField(max_length=64, help_text="the seed world its episodes fork")
    spec = models.JSONField(help_text="the parsed task (TaskSpec.to_dict())")
    split_rule = models.JSONField(default=dict, help_text="held-out vars, test fraction, family hold-out")

    class Meta:
        ordering = ["suite", "position"]
        constraints = [models.UniqueConstraint(fields=["suite", "task_id"], name="exp_task_id_in_suite")]

    def __str__(self):
        return f"{self.suite.name}/{self.task_id}"

    def task_spec(self):
        from experiments.suites import TaskSpec

        return TaskSpec.from_dict(self.spec)

    def variants(self, split, *, world=None):
        """The task's variants of a split, drawn again (they are deterministic, so never stored)."""
        from experiments.suites import variants

        return variants(self.task_spec(), split, world=world)

    def spec_hash(self):
        """sha256 of the parsed task, to tell whether a check ran on the task as it is now."""
        text = json.dumps(self.spec, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def family_heldout(self):
        return bool(self.split_rule.get("family_heldout"))


class TaskCheck(models.Model):
    """A task's last ``suites check``: its counts, its saturation flags and every variant's result.
    One per task, replaced by each new check (the command's or the page's button); it goes when the
    task goes."""

    COMMAND, PAGE = "command", "page"

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="last_check")
    checked_at = models.DateTimeField()
    passed = models.PositiveIntegerField(help_text="variants whose every self-test passed")
    failed = models.PositiveIntegerField()
    sample = models.PositiveIntegerField(
        null=True, blank=True, help_text="variants checked per split; empty when every one was"
    )
    splits = models.JSONField(default=list, help_text='the splits checked, e.g. ["train", "test"]')
    saturated = models.JSONField(default=list, help_text='"split/index: why" per saturated variant')
    results = models.JSONField(
        default=list, help_text="one VariantCheck.to_dict() per variant, with its printed 'line'"
    )
    spec_hash = models.CharField(max_length=64, help_text="Task.spec_hash() of the task as checked")
    source = models.CharField(max_length=16, choices=[(COMMAND, "command"), (PAGE, "page")])
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the operator who pressed the page's button; empty for the command",
    )

    def __str__(self):
        return f"{self.task}: {self.passed} passed, {self.failed} failed"

    @property
    def ok(self):
        return self.failed == 0

    @property
    def saturated_variants(self):
        """How many variants were flagged as saturated."""
        return sum(bool(r["flags"]) for r in self.results)

    @property
    def outdated(self):
        """Whether the task was edited since this check ran."""
        return self.spec_hash != self.task.spec_hash()

    @property
    def lines(self):
        """The check as ``suites check`` printed it: one line per variant, then the counts."""
        return "\n".join([*(r["line"] for r in self.results), f"{self.passed} passed, {self.failed} failed"])
