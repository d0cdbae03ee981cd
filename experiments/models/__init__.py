"""The experiments app's models, one module per concern."""

from experiments.models.capability import Capability
from experiments.models.experiments import Checkpoint, Episode, Experiment, Iteration, MetricPoint, Step
from experiments.models.review import Comment, EpisodeReplay, QueueItem, Review, ReviewQueue
from experiments.models.suites import Task, TaskCheck, TaskSuite

__all__ = [
    "Capability",
    "Checkpoint",
    "Comment",
    "Episode",
    "EpisodeReplay",
    "Experiment",
    "Iteration",
    "MetricPoint",
    "QueueItem",
    "Review",
    "ReviewQueue",
    "Step",
    "Task",
    "TaskCheck",
    "TaskSuite",
]
