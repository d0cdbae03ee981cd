"""Experiments as stored: the run, its iterations, every episode with its steps, the adapter
checkpoints and the metric points behind the curves.

An iteration's episodes are keyed by (experiment, iteration, task, variant, split, sample), so a
redelivered rollout task writes the same rows again instead of adding new ones. A step's generated
token ids and log-probs are kept compactly as int32 and float32 arrays in bytes (Python's
``array``, little-endian on every host we run; ``Step.token_ids`` / ``Step.logprobs`` decode them).
float32, not float16: the train task computes its GRPO ratios against these log-probs, which must
be the ones sampled. Its prompt ids are rebuilt from the episode's instruction and earlier steps
(trainer.rollout.turn_prompt) and checked against ``prompt_tokens``.
"""

from array import array

from django.conf import settings
from django.db import models

from experiments.models.suites import Task, TaskSuite


class Experiment(models.Model):
    GRPO, SFT, SFT_GRPO, EVAL = "grpo", "sft", "sft+grpo", "eval"
    ALGORITHMS = [(GRPO, "GRPO"), (SFT, "SFT"), (SFT_GRPO, "SFT + GRPO"), (EVAL, "evaluation only")]
    QUEUED, RUNNING, PAUSED = "queued", "running", "paused"
    COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"
    STATUSES = [(s, s) for s in (QUEUED, RUNNING, PAUSED, COMPLETED, FAILED, CANCELLED)]
    FINISHED = (COMPLETED, FAILED, CANCELLED)

    name = models.CharField(max_length=120)
    suite = models.ForeignKey(TaskSuite, on_delete=models.PROTECT, related_name="experiments")
    model_name = models.CharField(max_length=200, help_text="trainer.models registry name, HF id or path")
    algorithm = models.CharField(max_length=16, choices=ALGORITHMS, default=GRPO)
    hyperparameters = models.JSONField(help_text="experiments.hyperparameters.validate() output")
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED, db_index=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="experiments")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="clones",
        help_text="the experiment this one was cloned from (its config is diffed against it)",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    current_iteration = models.PositiveIntegerField(default=0, help_text="the iteration under way (1-based)")
    episodes_planned = models.PositiveIntegerField(default=0, help_text="episodes the whole run samples")
    error = models.TextField(blank=True, default="", help_text="what went wrong, one line")
    traceback = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"#{self.pk} {self.name}"

    @property
    def finished(self):
        return self.status in self.FINISHED

    @property
    def sft_steps(self):
        return self.hyperparameters["sft_epochs"] if self.algorithm in (self.SFT, self.SFT_GRPO) else 0

    @property
    def grpo_steps(self):
        return self.hyperparameters["iterations"] if self.algorithm in (self.GRPO, self.SFT_GRPO) else 0

    @property
    def iterations(self):
        """Steps of the whole run: SFT epochs, then GRPO iterations; one for an evaluation."""
        return 1 if self.algorithm == self.EVAL else self.sft_steps + self.grpo_steps

    def phase(self, index):
        """What iteration ``index`` does: "sft" (an epoch on demonstrations), "grpo" or "eval"."""
        if self.algorithm == self.EVAL:
            return self.EVAL
        return self.SFT if index <= self.sft_steps else self.GRPO


class Iteration(models.Model):
    ROLLING, TRAINING, EVALUATING = "rolling", "training", "evaluating"
    DONE, PAUSED, CANCELLED = "done", "paused", "cancelled"
    STATES = [(s, s) for s in (ROLLING, TRAINING, EVALUATING, DONE, PAUSED, CANCELLED)]

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="iteration_set")
    index = models.PositiveIntegerField(help_text="1, 2, ...; 0: the evaluation before training")
    state = models.CharField(max_length=16, choices=STATES, default=ROLLING)
    phase = models.CharField(max_length=8, default="grpo", help_text="sft, grpo or eval (Experiment.phase)")
    policy_version = models.PositiveIntegerField(help_text="the adapter version its rollouts sample from")
    groups = models.JSONField(default=list, help_text="[[task pk, variant index], ...] sampled")
    episodes_expected = models.PositiveIntegerField(default=0, help_text="training episodes")
    eval_groups = models.JSONField(
        default=list, help_text="[[task pk, variant index], ...] of the held-out evaluation after it, if any"
    )
    episodes_done = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    rollouts_finished_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rollout_seconds = models.FloatField(default=0, help_text="sum of the rollout tasks' durations")
    train_seconds = models.FloatField(default=0)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="last sign of life of a task working on it (experiments.recovery)"
    )
    redispatched_at = models.DateTimeField(null=True, blank=True, help_text="last dispatched again, if ever")
    redispatches = models.PositiveIntegerField(
        default=0, help_text="times dispatched again by the stall detector after its messages were lost"
    )

    class Meta:
        ordering = ["experiment", "index"]
        constraints = [models.UniqueConstraint(fields=["experiment", "index"], name="exp_iteration_index")]

    def __str__(self):
        return f"{self.experiment} iteration {self.index}"


class Episode(models.Model):
    TRAIN, TEST = "train", "test"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="episodes")
    iteration = models.ForeignKey(Iteration, on_delete=models.CASCADE, related_name="episodes")
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="episodes")
    variant_index = models.PositiveIntegerField()
    split = models.CharField(max_length=8, choices=[(TRAIN, TRAIN), (TEST, TEST)], default=TRAIN)
    sample_index = models.PositiveIntegerField(help_text="0 .. G-1 within its group")
    instruction = models.TextField(help_text="as shown to the model (setup results bound)")
    policy_version = models.PositiveIntegerField()
    reward = models.FloatField()
    success = models.BooleanField()
    checks = models.JSONField(default=list, help_text="the verifier's named results")
    failure_category = models.CharField(max_length=32, blank=True, default="")
    turns = models.PositiveIntegerField(default=0)
    finished = models.BooleanField(default=False, help_text="ended by a final action, not the turn limit")
    tokens = models.PositiveIntegerField(default=0, help_text="tokens generated")
    duration = models.FloatField(default=0, help_text="seconds of its group's rollout, per episode")
    world_slug = models.CharField(max_length=80, blank=True, default="", help_text="its world, if kept")
    details = models.JSONField(default=dict, help_text="calls, format errors, final answer, breakdown")

    class Meta:
        ordering = ["experiment", "iteration", "task", "variant_index", "sample_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "iteration", "task", "variant_index", "split", "sample_index"],
                name="exp_episode_key",
            )
        ]
        indexes = [
            models.Index(fields=["experiment", "split"], name="exp_episode_split"),
            models.Index(fields=["reward", "id"], name="exp_episode_reward"),  # the browser's sort
            models.Index(fields=["experiment", "reward", "id"], name="exp_episode_exp_reward"),
            models.Index(fields=["experiment", "id"], name="exp_episode_exp_id"),
            # The experiment pages' curves: an index-only scan grouped in its order (selectors).
            models.Index(
                fields=["experiment", "split", "iteration", "task", "success", "reward"],
                name="exp_episode_curve",
            ),
        ]

    def __str__(self):
        return f"{self.task} v{self.variant_index} #{self.sample_index} ({self.reward:.2f})"


class Step(models.Model):
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    prompt_tokens = models.PositiveIntegerField()
    raw_output = models.TextField(help_text="the model's text, untrusted")
    action = models.JSONField(null=True, blank=True, help_text="the parsed action; null on a format error")
    parse_error = models.TextField(blank=True, default="")
    request = models.JSONField(null=True, blank=True, help_text="{method, path, query, body} sent")
    response = models.JSONField(null=True, blank=True, help_text="{status, body} returned")
    world_changes = models.JSONField(default=list, help_text="[{action, object_type, object_ref, ...}]")
    observation = models.TextField(blank=True, default="", help_text="as shown to the model")
    token_bytes = models.BinaryField(help_text="generated token ids, int32 little-endian")
    logprob_bytes = models.BinaryField(help_text="their log-probs, float32 little-endian")
    finish_reason = models.CharField(max_length=16, blank=True, default="")
    latency = models.FloatField(help_text="seconds of the batched generate call")

    class Meta:
        ordering = ["episode", "index"]
        constraints = [models.UniqueConstraint(fields=["episode", "index"], name="exp_step_index")]

    def __str__(self):
        return f"{self.episode_id} step {self.index}"

    @staticmethod
    def pack(token_ids, logprobs):
        """(token_bytes, logprob_bytes) for lists of ints and floats."""
        return array("i", token_ids).tobytes(), array("f", logprobs).tobytes()

    @property
    def token_ids(self):
        return array("i", bytes(self.token_bytes)).tolist()

    @property
    def logprobs(self):
        return array("f", bytes(self.logprob_bytes)).tolist()


class Checkpoint(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="checkpoints")
    version = models.PositiveIntegerField(help_text="policy version: updates applied so far")
    path = models.CharField(max_length=300, help_text="folder in the default storage (under MEDIA_ROOT)")
    metrics = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["experiment", "version"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "version"], name="exp_checkpoint_version")
        ]

    def __str__(self):
        return f"{self.experiment} v{self.version}"


class MetricPoint(models.Model):
    """One number of one iteration: a point of one curve (``name``) of one split."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="metric_points")
    iteration = models.PositiveIntegerField()
    split = models.CharField(max_length=8, default=Episode.TRAIN)
    name = models.CharField(max_length=160, help_text="reward_mean, loss, ...; reward/<task> per task")
    value = models.FloatField()

    class Meta:
        ordering = ["experiment", "name", "iteration"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "split", "name", "iteration"], name="exp_metric_point"
            )
        ]

    def __str__(self):
        return f"{self.name}[{self.iteration}] = {self.value:g}"
