from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self):
        from experiments.roles import ensure_roles

        # After every migrate (and every test-database flush) the role groups exist with
        # exactly their permissions.
        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="experiments.ensure_roles")
