"""Team review of episodes: a review per episode (verdict, failure label, status, assignee and
the suspicion flags raised on it), threaded comments anchored to a step, review queues built
from the episodes browser's saved filters, and the cached replay of an episode (the verifier
timeline) so that reopening its page does not replay it again.

The rules that fill these in (label suggestion, suspicion flags, queue sampling, the replay)
live in experiments.review and experiments.replay; the models only hold what was decided.
"""

from django.conf import settings
from django.db import models

from experiments.models.experiments import Episode


class Review(models.Model):
    AGENT_FAILURE, FALSE_PASS, FALSE_FAIL, CORRECT = "agent_failure", "false_pass", "false_fail", "correct"
    VERDICTS = [
        (AGENT_FAILURE, "agent failure"),
        (FALSE_PASS, "verifier false pass"),
        (FALSE_FAIL, "verifier false fail"),
        (CORRECT, "correct"),
    ]
    # The failure labels, in the order of the number keys of the review panel (1..7).
    LABELS = [
        ("wrong_endpoint", "wrong endpoint"),
        ("invalid_field", "missing or invalid field"),
        ("hallucinated_entity", "hallucinated entity"),
        ("wrong_order", "wrong order"),
        ("early_stop", "early stop"),
        ("format_error", "format error"),
        ("other", "other"),
    ]
    OPEN, TRIAGED, RESOLVED = "open", "triaged", "resolved"
    STATUSES = [(OPEN, "open"), (TRIAGED, "triaged"), (RESOLVED, "resolved")]

    episode = models.OneToOneField(Episode, on_delete=models.CASCADE, related_name="review")
    verdict = models.CharField(max_length=16, choices=VERDICTS, blank=True, default="", db_index=True)
    label = models.CharField(max_length=24, choices=LABELS, blank=True, default="", db_index=True)
    suggested_label = models.CharField(max_length=24, choices=LABELS, blank=True, default="")
    status = models.CharField(max_length=12, choices=STATUSES, default=OPEN, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    flags = models.JSONField(default=list, blank=True, help_text="suspicion rules that fired: [{rule, why}]")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self):
        return f"review of episode {self.episode_id}: {self.verdict or 'no verdict'}"


class Comment(models.Model):
    """A comment on an episode, optionally anchored to one of its steps and answering another."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="review_comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(
        help_text="markdown; rendered with every HTML tag outside a small allow-list removed"
    )
    step_index = models.PositiveIntegerField(null=True, blank=True, help_text="the step it is about")
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies"
    )
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="review_mentions")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["episode", "created_at", "id"]

    def __str__(self):
        return f"comment {self.pk} on episode {self.episode_id}"


class ReviewQueue(models.Model):
    """Episodes picked by a saved browser filter, sampled across failure signatures and handed
    out round-robin to the members."""

    name = models.CharField(max_length=120)
    filters = models.JSONField(default=dict, help_text="the episodes browser's query parameters")
    size = models.PositiveIntegerField(default=50, help_text="episodes drawn into the queue")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="review_queues")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name


class QueueItem(models.Model):
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="items")
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="queue_items")
    position = models.PositiveIntegerField()
    signature = models.CharField(max_length=200, blank=True, default="", help_text="failed checks + category")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["queue", "position"]
        constraints = [models.UniqueConstraint(fields=["queue", "episode"], name="exp_queue_episode")]
        indexes = [models.Index(fields=["queue", "assignee", "done_at", "position"], name="exp_queue_next")]

    def __str__(self):
        return f"{self.queue} #{self.position}"


class EpisodeReplay(models.Model):
    """The recorded calls of an episode replayed in a fresh world, verified after every step:
    the verifier timeline, kept so reopening an episode is fast."""

    episode = models.OneToOneField(Episode, on_delete=models.CASCADE, related_name="replay")
    data = models.JSONField(help_text="experiments.replay.replay_episode() output")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"replay of episode {self.episode_id}"
