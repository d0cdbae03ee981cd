"""What a rollout task does besides sampling: find the variant it names, and store a sampled group
(episodes, steps, each call's request, response and world changes) exactly once.

A group is written in one transaction, under a lock on its iteration, by the first task that
finishes it: a second copy of the task (redelivered by the broker, or dispatched again by the
stall detector, experiments.recovery) that finishes later writes nothing. The episodes' worlds are
deleted once stored, except those the ``keep_worlds`` hyperparameter keeps for replay (none,
failed, all): their slug is stored on the episode, and ``simworld prune`` deletes them when old.
"""

KEEP_WORLDS = ("none", "failed", "all")


def group_variant(spec, task, split, variant_index):
    """The variant a rollout task names, drawn again as the headless run draws it."""
    from experiments.training import suite_variants

    drawn = suite_variants(spec, split, tasks=[task.task_id], per_task=variant_index + 1)
    for variant in drawn:
        if variant.index == variant_index:
            return variant
    raise ValueError(f"task {task} has no {split} variant {variant_index} (it draws {len(drawn)})")


def keeps_world(keep_worlds, episode):
    """Whether ``keep_worlds`` (none | failed | all) keeps this trainer episode's world."""
    if keep_worlds not in KEEP_WORLDS:
        raise ValueError(f"keep_worlds is one of {', '.join(KEEP_WORLDS)}, not {keep_worlds!r}")
    return keep_worlds == "all" or (keep_worlds == "failed" and not episode.success)


def store_group(key, group_size, policy_version, episodes, seconds, keep_worlds="failed"):
    """Write a group's episodes and steps in one transaction, unless another copy of the task
    stored the group first; returns whether this call stored it. Each call's request, response
    and world changes are read from the episode's world, which is then deleted unless kept."""
    from django.db import transaction

    from experiments.environment import discard_worlds
    from experiments.models import Episode, Iteration, Step
    from simulator.models import ApiCall, World

    slugs = [e.details.get("world") for e in episodes]
    worlds = {w.slug: w for w in World.objects.filter(slug__in=[s for s in slugs if s])}
    kept = set()
    with transaction.atomic():
        Iteration.objects.select_for_update().filter(pk=key["iteration"].pk).first()
        stored = Episode.objects.filter(**key).count() >= group_size
        for sample, episode in enumerate(() if stored else episodes):
            world = worlds.get(episode.details.get("world"))
            calls = (
                list(
                    ApiCall.objects.filter(world=world, door="client")
                    .prefetch_related("changes")
                    .order_by("seq")
                )
                if world
                else []
            )
            calls = (
                calls[len(calls) - episode.details.get("calls", 0) :] if calls else []
            )  # the agent's, after setup
            if world is not None and keeps_world(keep_worlds, episode):
                kept.add(world.slug)
            details = {k: v for k, v in episode.details.items() if k != "checks"}
            row, _created = Episode.objects.update_or_create(
                **key,
                sample_index=sample,
                defaults={
                    "policy_version": policy_version,
                    "instruction": episode.instruction,
                    "reward": episode.reward,
                    "success": episode.success,
                    "checks": episode.details.get("checks", []),
                    "failure_category": failure_category(episode),
                    "turns": len(episode.turns),
                    "finished": episode.done,
                    "tokens": episode.generated_tokens,
                    "duration": seconds / max(len(episodes), 1),
                    "world_slug": world.slug if world is not None and world.slug in kept else "",
                    "details": details,
                },
            )
            row.steps.all().delete()
            Step.objects.bulk_create(episode_steps(row, episode, calls))
    discard_worlds([w for slug, w in worlds.items() if slug not in kept])
    return not stored


def episode_steps(row, episode, calls):
    """The Step rows of a stored episode: each turn with the call it made (``calls``: the agent's
    ApiCalls in order, their changes prefetched)."""
    from experiments.models import Step

    calls = iter(calls)
    steps = []
    for index, turn in enumerate(episode.turns):
        call = next(calls, None) if turn.action.ok and not turn.action.is_final else None
        token_bytes, logprob_bytes = Step.pack(turn.completion_ids, turn.logprobs)
        steps.append(
            Step(
                episode=row,
                index=index,
                prompt_tokens=len(turn.prompt_ids),
                raw_output=turn.text,
                action=turn.action.as_dict() if turn.action.ok else None,
                parse_error=turn.action.error or "",
                request=(
                    {"method": call.method, "path": call.path, "query": call.query, "body": call.body}
                    if call
                    else None
                ),
                response=(
                    {"status": turn.observation.status, "body": turn.observation.body}
                    if turn.observation
                    else None
                ),
                world_changes=[
                    {
                        "action": c.action,
                        "object_type": c.object_type,
                        "object_ref": c.object_ref,
                        "field": c.field,
                        "before": c.before,
                        "after": c.after,
                    }
                    for c in (call.changes.all() if call else ())
                ],
                observation=turn.observation_text,
                token_bytes=token_bytes,
                logprob_bytes=logprob_bytes,
                finish_reason=turn.finish_reason or "",
                latency=turn.seconds,
            )
        )
    return steps


def failure_category(episode):
    """A coarse reason for a failed episode, for filtering: format, turn limit, no calls, checks."""
    if episode.success:
        return ""
    if episode.details.get("format_errors"):
        return "format"
    if not episode.done:
        return "turn_limit"
    if not episode.details.get("calls"):
        return "no_calls"
    return "checks"
