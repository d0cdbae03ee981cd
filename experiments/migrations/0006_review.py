from django.db import migrations


class Migration(migrations.Migration):
    """Team review: verdicts, labels, comments, queues."""

    dependencies = [("experiments", "0005_experiment_page_indexes")]
    operations = []
