"""``manage.py history``: write a recorded training history without a model, for the page
benchmarks (``bench/pages.py``) and for trying the pages out.

    python manage.py history --episodes 100000 --experiments 4 --steps-per-episode 5
"""

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from experiments.builtin import load_builtin_suites
from experiments.history import record_history
from experiments.models import TaskSuite


class Command(BaseCommand):
    help = "Record synthetic finished experiments (no model runs) so the pages can be tried at scale."

    def add_arguments(self, parser):
        parser.add_argument("--suite", default="atlassian-core")
        parser.add_argument("--owner", default=None, help="username (default: the first superuser or user)")
        parser.add_argument("--episodes", type=int, default=10_000, help="training episodes in all")
        parser.add_argument("--experiments", type=int, default=2)
        parser.add_argument("--steps-per-episode", type=int, default=5)
        parser.add_argument("--tasks-per-iteration", type=int, default=8)
        parser.add_argument("--group-size", type=int, default=8)
        parser.add_argument("--eval-every", type=int, default=10)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        if not TaskSuite.objects.filter(name=options["suite"]).exists():
            load_builtin_suites()
        suite = TaskSuite.objects.filter(name=options["suite"]).first()
        if suite is None:
            raise CommandError(f"no suite named {options['suite']!r}")
        owner = self._owner(options["owner"])
        per_iteration = options["tasks_per_iteration"] * options["group_size"]
        iterations = max(1, round(options["episodes"] / options["experiments"] / per_iteration))
        for n in range(options["experiments"]):
            started = time.perf_counter()
            experiment = record_history(
                owner=owner,
                suite=suite,
                iterations=iterations,
                tasks_per_iteration=options["tasks_per_iteration"],
                group_size=options["group_size"],
                steps_per_episode=options["steps_per_episode"],
                eval_every=options["eval_every"],
                seed=options["seed"] + n,
            )
            self.stdout.write(
                f"experiment {experiment.pk}: {iterations} iterations, "
                f"{experiment.episodes_planned} episodes in {time.perf_counter() - started:.1f}s"
            )

    def _owner(self, username):
        users = get_user_model().objects
        if username:
            try:
                return users.get(username=username)
            except users.model.DoesNotExist:
                raise CommandError(f"no user named {username!r}") from None
        owner = users.filter(is_superuser=True).first() or users.order_by("pk").first()
        if owner is None:
            raise CommandError("no user yet: create one (or run `manage.py bootstrap --demo-user`)")
        return owner
