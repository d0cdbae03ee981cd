import django.db.models.deletion
from django.conf import settings
from django.db import DatabaseError, migrations, models, transaction

# The browser's free-text search (experiments.replay.filtered_episodes) matches
# UPPER(raw_output) and UPPER(request::text) with LIKE '%...%'; on PostgreSQL trigram indexes on
# exactly those expressions keep it fast at 500k steps. Where pg_trgm cannot be created (no
# privilege), or on SQLite, the search still works, by scanning.
SEARCH_INDEXES = {
    "exp_step_output_trgm": 'UPPER("raw_output"::text)',
    "exp_step_call_trgm": 'UPPER(("request")::text)',
}


def create_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        return
    for name, expression in SEARCH_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "experiments_step" '
            f"USING gin (({expression}) gin_trgm_ops)"
        )


def drop_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in SEARCH_INDEXES:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    """Team review: verdicts, labels, comments, queues; the cached replays; the browser's reward sort."""

    dependencies = [
        ("experiments", "0005_experiment_page_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Comment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "body",
                    models.TextField(
                        help_text="markdown; rendered with every HTML tag outside a small allow-list removed"
                    ),
                ),
                (
                    "step_index",
                    models.PositiveIntegerField(blank=True, help_text="the step it is about", null=True),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["episode", "created_at", "id"],
            },
        ),
        migrations.CreateModel(
            name="EpisodeReplay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("data", models.JSONField(help_text="experiments.replay.replay_episode() output")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name="QueueItem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveIntegerField()),
                (
                    "signature",
                    models.CharField(
                        blank=True, default="", help_text="failed checks + category", max_length=200
                    ),
                ),
                ("done_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["queue", "position"],
            },
        ),
        migrations.CreateModel(
            name="Review",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "verdict",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("agent_failure", "agent failure"),
                            ("false_pass", "verifier false pass"),
                            ("false_fail", "verifier false fail"),
                            ("correct", "correct"),
                        ],
                        db_index=True,
                        default="",
                        max_length=16,
                    ),
                ),
                (
                    "label",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("wrong_endpoint", "wrong endpoint"),
                            ("invalid_field", "missing or invalid field"),
                            ("hallucinated_entity", "hallucinated entity"),
                            ("wrong_order", "wrong order"),
                            ("early_stop", "early stop"),
                            ("format_error", "format error"),
                            ("other", "other"),
                        ],
                        db_index=True,
                        default="",
                        max_length=24,
                    ),
                ),
                (
                    "suggested_label",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("wrong_endpoint", "wrong endpoint"),
                            ("invalid_field", "missing or invalid field"),
                            ("hallucinated_entity", "hallucinated entity"),
                            ("wrong_order", "wrong order"),
                            ("early_stop", "early stop"),
                            ("format_error", "format error"),
                            ("other", "other"),
                        ],
                        default="",
                        max_length=24,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[("open", "open"), ("triaged", "triaged"), ("resolved", "resolved")],
                        db_index=True,
                        default="open",
                        max_length=12,
                    ),
                ),
                (
                    "flags",
                    models.JSONField(
                        blank=True, default=list, help_text="suspicion rules that fired: [{rule, why}]"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["-updated_at"],
            },
        ),
        migrations.CreateModel(
            name="ReviewQueue",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=120)),
                (
                    "filters",
                    models.JSONField(default=dict, help_text="the episodes browser's query parameters"),
                ),
                ("size", models.PositiveIntegerField(default=50, help_text="episodes drawn into the queue")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["-created_at"],
            },
        ),
        migrations.AddIndex(
            model_name="episode",
            index=models.Index(fields=["reward", "id"], name="exp_episode_reward"),
        ),
        migrations.AddIndex(
            model_name="episode",
            index=models.Index(fields=["experiment", "reward", "id"], name="exp_episode_exp_reward"),
        ),
        migrations.AddIndex(
            model_name="episode",
            index=models.Index(fields=["experiment", "id"], name="exp_episode_exp_id"),
        ),
        migrations.AddField(
            model_name="comment",
            name="author",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="comment",
            name="episode",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="review_comments",
                to="experiments.episode",
            ),
        ),
        migrations.AddField(
            model_name="comment",
            name="mentions",
            field=models.ManyToManyField(
                blank=True, related_name="review_mentions", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="comment",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="replies",
                to="experiments.comment",
            ),
        ),
        migrations.AddField(
            model_name="episodereplay",
            name="episode",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="replay", to="experiments.episode"
            ),
        ),
        migrations.AddField(
            model_name="queueitem",
            name="assignee",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="queueitem",
            name="episode",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="queue_items",
                to="experiments.episode",
            ),
        ),
        migrations.AddField(
            model_name="review",
            name="assignee",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="review",
            name="episode",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="review", to="experiments.episode"
            ),
        ),
        migrations.AddField(
            model_name="review",
            name="reviewed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="reviewqueue",
            name="created_by",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="reviewqueue",
            name="members",
            field=models.ManyToManyField(related_name="review_queues", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name="queueitem",
            name="queue",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="items",
                to="experiments.reviewqueue",
            ),
        ),
        migrations.AddIndex(
            model_name="queueitem",
            index=models.Index(fields=["queue", "assignee", "done_at", "position"], name="exp_queue_next"),
        ),
        migrations.AddConstraint(
            model_name="queueitem",
            constraint=models.UniqueConstraint(fields=("queue", "episode"), name="exp_queue_episode"),
        ),
        migrations.RunPython(create_search_indexes, drop_search_indexes),
    ]
