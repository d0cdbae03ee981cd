import json

from celery.exceptions import TimeoutError as CeleryTimeout
from django.core.management.base import BaseCommand, CommandError

from experiments.services import run_worker_check


class Command(BaseCommand):
    help = (
        "Run a chord through the broker and real workers: N tasks on the 'rollout' queue, "
        "then one on the 'train' queue. Fails if no worker finishes it in time."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rollouts", type=int, default=4)
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the result as JSON")

    def handle(self, *args, rollouts, timeout, as_json, **options):
        try:
            result = run_worker_check(rollouts=rollouts, timeout=timeout)
        except CeleryTimeout as exc:
            raise CommandError(
                f"no worker finished the check within {timeout:g} s: is a worker running on "
                "both queues? (celery -A rlvr_site worker -Q rollout,train)"
            ) from exc
        if as_json:
            self.stdout.write(json.dumps(result, sort_keys=True))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"chord ok: {result['rollouts']} rollout tasks on "
                    f"{', '.join(result['rollout_workers'])}, train task on {result['train_worker']}"
                )
            )
