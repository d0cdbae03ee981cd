from django.db import migrations, models


class Migration(migrations.Migration):
    """Indexes the experiment pages need at 100k episodes: the curves aggregate an experiment's
    episodes per (split, iteration, task) from this index alone (experiments.selectors)."""

    dependencies = [("experiments", "0004_experiments")]
    operations = [
        migrations.AddIndex(
            model_name="episode",
            index=models.Index(
                fields=["experiment", "split", "iteration", "task", "success", "reward"],
                name="exp_episode_curve",
            ),
        ),
    ]
