from django.db import models


class Capability(models.Model):
    """The site's role permissions. No table: it exists so that Django creates the permissions,
    which the groups in experiments/roles.py hand out."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("launch_experiment", "Can launch, pause, resume and cancel experiments"),
            ("edit_suite", "Can create and edit task suites"),
            ("review_episode", "Can review episodes: verdicts, labels, comments, assignments"),
        ]

    def __str__(self):
        return "site capabilities"
