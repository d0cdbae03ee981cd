"""Task suites as stored: the YAML source of a suite and each of its tasks, parsed."""

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

    @property
    def family_heldout(self):
        return bool(self.split_rule.get("family_heldout"))
