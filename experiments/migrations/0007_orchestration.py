from django.db import migrations, models


class Migration(migrations.Migration):
    """Orchestration state: heartbeats and stall detection (experiments.recovery), and iteration 0,
    the evaluation before training."""

    dependencies = [("experiments", "0006_review")]
    operations = [
        migrations.AddField(
            model_name="iteration",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True,
                help_text="last sign of life of a task working on it (experiments.recovery)",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="iteration",
            name="redispatched_at",
            field=models.DateTimeField(blank=True, help_text="last dispatched again, if ever", null=True),
        ),
        migrations.AddField(
            model_name="iteration",
            name="redispatches",
            field=models.PositiveIntegerField(
                default=0,
                help_text=("times dispatched again by the stall detector after its messages were lost"),
            ),
        ),
        migrations.AlterField(
            model_name="iteration",
            name="index",
            field=models.PositiveIntegerField(help_text="1, 2, ...; 0: the evaluation before training"),
        ),
    ]
