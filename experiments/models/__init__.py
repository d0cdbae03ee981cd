"""The experiments app's models, one module per concern."""

from experiments.models.capability import Capability
from experiments.models.suites import Task, TaskCheck, TaskSuite

__all__ = ["Capability", "Task", "TaskCheck", "TaskSuite"]
