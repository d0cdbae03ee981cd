"""Functions that change state on behalf of a user, shared by the pages and the commands."""

from celery import chord

from experiments.tasks import rollout_probe, train_probe


def run_worker_check(rollouts=4, timeout=60):
    """Run a chord of ``rollouts`` probe tasks on the ``rollout`` queue followed by one on the
    ``train`` queue, through the configured broker and real workers; return the body's result.

    Raises celery.exceptions.TimeoutError when no worker finishes within ``timeout`` seconds.
    """
    result = chord(rollout_probe.s(index) for index in range(rollouts))(train_probe.s())
    return result.get(timeout=timeout, propagate=True)


def check_task(
    task_spec, *, task=None, source, user=None, sample=None, splits=("train", "test"), on_variant=None
):
    """Run ``suites check`` on one task (a TaskSpec): every variant of ``splits``, or the first
    ``sample`` of each (experiments.oracle.check_tasks). ``on_variant(report)`` is told of each
    VariantCheck as it is done. When ``task`` (the stored Task) is given, the result is kept as its
    last check (a TaskCheck, replacing the one before), made by ``source`` ("command" or "page") and
    ``user``. Returns the VariantChecks. Raises experiments.variants.VariantError when the task's
    variants cannot be drawn."""
    from django.utils import timezone

    from experiments.models import TaskCheck
    from experiments.oracle import check_tasks, saturated_tasks

    reports = []
    for report in check_tasks([task_spec], sample=sample, splits=splits):
        reports.append(report)
        if on_variant is not None:
            on_variant(report)
    if task is not None:
        prefix = f"{task.suite.name}/"
        failed = sum(not r.passed for r in reports)
        saturated = saturated_tasks([(task.suite.name, r) for r in reports])
        TaskCheck.objects.update_or_create(
            task=task,
            defaults={
                "checked_at": timezone.now(),
                "passed": len(reports) - failed,
                "failed": failed,
                "sample": sample,
                "splits": list(splits),
                "saturated": saturated.get(f"{prefix}{task.task_id}", []),
                "results": [{**r.to_dict(), "line": r.line(prefix=prefix)} for r in reports],
                "spec_hash": task.spec_hash(),
                "source": source,
                "checked_by": user,
            },
        )
    return reports


def demonstration_records(
    spec,
    split="train",
    *,
    tokenizer,
    tasks=(),
    per_task=None,
    tool_docs="families",
    observation_tokens=256,
):
    """(records, skipped): each variant's oracle as the chat an SFT run trains on, one JSON-able
    record per variant that scores 1.0: ``{"suite", "task", "variant", "split", "messages",
    "reward"}``. The messages are the trainer's own (experiments.training: the suite's system
    prompt, the instruction, each action as the JSON trainer.parsing reads and each observation as
    the agent loop renders it, cut to ``observation_tokens`` tokens of ``tokenizer``).
    ``skipped`` lists ``"variant key: why"`` for the variants left out. Raises TrainingError for
    unknown tasks."""
    from experiments.training import demonstrations, suite_system_prompt, transcript_messages

    system = suite_system_prompt(spec, tasks=tasks, scope=tool_docs)
    transcripts, skipped = demonstrations(spec, split, tasks=tasks, per_task=per_task)
    records = [
        {
            "suite": spec.name,
            "task": t.variant.task_id,
            "variant": t.variant.key,
            "split": split,
            "messages": transcript_messages(t, system, tokenizer, observation_tokens),
            "reward": t.result.reward,
        }
        for t in transcripts
    ]
    return records, skipped
