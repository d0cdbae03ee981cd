from django.db import migrations


class Migration(migrations.Migration):
    """Orchestration state: heartbeats and stall detection."""

    dependencies = [("experiments", "0006_review")]
    operations = []
