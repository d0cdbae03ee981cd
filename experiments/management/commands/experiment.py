"""``manage.py experiment``: launch and steer experiments on Celery, through the same services as
the pages (experiments.services).

    python manage.py experiment start --suite atlassian-core --model smollm2-135m --algo grpo \\
        --set iterations=20 --set group_size=4 [--owner alice] [--wait] [--json]
    python manage.py experiment status|pause|resume|cancel <id> [--json]
    python manage.py experiment recover [--stalled-after SECONDS] [--json]

With ``--json`` each prints one object: experiments.services.experiment_progress (``id``,
``status``, ``iteration``, ``iterations``, ``episodes_done``, ``episodes_total``, ``eta_seconds``,
``metrics``, ...). ``--wait`` polls until the experiment finishes, and fails unless it completed.
``recover`` dispatches again the iterations that made no progress for ``--stalled-after`` seconds
(default RLVR_STALL_SECONDS) while the queues are empty: their messages were lost with a dead
worker (experiments.recovery; every worker also does this by itself).
"""

import json
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from experiments.hyperparameters import FIELDS, HyperparameterError, parse_assignments
from experiments.services import (
    ExperimentError,
    cancel_experiment,
    experiment_progress,
    pause_experiment,
    resume_experiment,
    start_experiment,
)
from experiments.training import ALGOS

ACTIONS = {"pause": pause_experiment, "resume": resume_experiment, "cancel": cancel_experiment}


class Command(BaseCommand):
    help = "Start an experiment on the Celery workers, or show, pause, resume or cancel one."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        start = actions.add_parser("start", help="launch an experiment")
        start.add_argument("--suite", required=True, help="a stored suite's name")
        start.add_argument("--model", default="smollm2-135m")
        start.add_argument("--algo", default="grpo", choices=ALGOS)
        start.add_argument("--name", help="defaults to '<suite> <algo> <model>'")
        start.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a hyperparameter: " + ", ".join(f.name for f in FIELDS),
        )
        start.add_argument("--owner", help="username (default: the first superuser)")
        start.add_argument("--wait", action="store_true", help="poll until it finishes")
        start.add_argument("--json", action="store_true")
        recover = actions.add_parser("recover", help="dispatch stalled iterations again")
        recover.add_argument("--stalled-after", type=float, help="seconds without progress")
        recover.add_argument("--json", action="store_true")
        for name in ("status", *ACTIONS):
            action = actions.add_parser(name)
            action.add_argument("id", type=int)
            action.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        from experiments.models import Experiment

        if options["action"] == "recover":
            return self._recover(options["stalled_after"], options["json"])
        try:
            if options["action"] == "start":
                experiment = start_experiment(
                    self._owner(options["owner"]),
                    options["suite"],
                    options["model"],
                    options["algo"],
                    parse_assignments(options["set"]),
                    name=options["name"],
                )
                if options["wait"]:
                    self._wait(experiment, options["json"])
            else:
                experiment = Experiment.objects.filter(pk=options["id"]).first()
                if experiment is None:
                    raise CommandError(f"no experiment {options['id']}")
                if options["action"] in ACTIONS:
                    ACTIONS[options["action"]](experiment)
        except (ExperimentError, HyperparameterError) as err:
            raise CommandError(str(err)) from err
        progress = experiment_progress(experiment)
        if options["json"]:
            self.stdout.write(json.dumps(progress))
        else:
            self.stdout.write(_line(progress))
        if options["action"] == "start" and options["wait"] and progress["status"] != "completed":
            raise CommandError(f"experiment {progress['id']} {progress['status']}: {progress['error']}")

    def _recover(self, stalled_after, as_json):
        from experiments.recovery import recover_stalled

        recovered = recover_stalled(stalled_after)
        if as_json:
            self.stdout.write(json.dumps(recovered))
            return
        for item in recovered:
            self.stdout.write(
                f"experiment {item['experiment']} iteration {item['iteration']} ({item['state']}): "
                "dispatched again"
            )
        if not recovered:
            self.stdout.write("no stalled experiment")

    def _owner(self, username):
        users = get_user_model().objects
        if username:
            owner = users.filter(username=username).first()
            if owner is None:
                raise CommandError(f"no user {username!r}")
            return owner
        owner = users.filter(is_superuser=True).order_by("pk").first()
        if owner is None:
            raise CommandError("no superuser to own the experiment: give --owner USERNAME")
        return owner

    def _wait(self, experiment, quiet):
        while True:
            progress = experiment_progress(experiment)
            if experiment.finished:
                return
            if not quiet:
                self.stderr.write(_line(progress))
            time.sleep(2)


def _line(progress):
    eta = progress["eta_seconds"]
    reward = progress["metrics"].get("reward_mean")
    return (
        f"experiment {progress['id']} {progress['status']}: iteration {progress['iteration']}"
        f"/{progress['iterations']}, episodes {progress['episodes_done']}/{progress['episodes_total']}"
        + (f", eta {eta:.0f} s" if eta is not None else "")
        + (f", reward {reward:.3f}" if reward is not None else "")
        + (f"\n{progress['error']}" if progress["error"] else "")
    )
