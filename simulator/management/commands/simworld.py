"""``simworld``: make, list, delete and prune simulator worlds.

Scripts rely on ``simworld create --seed acme --json`` printing exactly one JSON object:
{"world", "base_url", "confluence_url", "email", "token"}.
"""

import datetime as dt
import json
import re

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.utils import timezone

from simulator.forking import delete_worlds
from simulator.models import ApiCall, User, World
from simulator.seeding import SeedError, load_seed

_AGE = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text):
    match = _AGE.match(text.strip())
    if not match:
        raise CommandError(f"bad age {text!r}: use a number and m, h, d or w (e.g. 7d)")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class Command(BaseCommand):
    help = "Create, list, delete and prune simulator worlds."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="fork a new world from a seed")
        create.add_argument("--seed", default="acme")
        create.add_argument("--slug", default=None)
        create.add_argument("--host", default="127.0.0.1")
        create.add_argument("--port", default="8000")
        create.add_argument("--json", dest="as_json", action="store_true", help="print one JSON object")
        sub.add_parser("list", help="list worlds")
        delete = sub.add_parser("delete", help="delete a world")
        delete.add_argument("slug")
        prune = sub.add_parser("prune", help="delete old worlds")
        prune.add_argument("--older-than", default="7d")
        prune.add_argument("--keep-failed", action="store_true", help="keep worlds whose outcome is 'failed'")

    def handle(self, *args, action, **options):
        getattr(self, f"do_{action}")(**options)

    def do_create(self, seed, slug, host, port, as_json, **_):
        try:
            template = load_seed(seed)
        except SeedError as err:
            raise CommandError(str(err)) from None
        if slug and World.objects.filter(slug=slug).exists():
            raise CommandError(f"a world named {slug!r} exists already")
        world = template.fork(slug)
        user = User.objects.filter(world=world, active=True).order_by("pk").first()
        base = f"http://{host}:{port}/sim/{world.slug}/"
        out = {
            "world": world.slug,
            "base_url": base,
            "confluence_url": base + "wiki/",
            "email": user.email,
            "token": user.api_token,
        }
        if as_json:
            self.stdout.write(json.dumps(out))
        else:
            for key, value in out.items():
                self.stdout.write(f"{key:15} {value}")

    def do_list(self, **_):
        calls = dict(ApiCall.objects.values_list("world").annotate(n=Count("id")).values_list("world", "n"))
        for w in World.objects.order_by("created_at"):
            kind = "template" if w.is_template else (w.outcome or "-")
            made = f"{w.created_at:%Y-%m-%d %H:%M}"
            self.stdout.write(f"{w.slug:40} {w.seed:10} {kind:10} {calls.get(w.pk, 0):6} calls  {made}")

    def do_delete(self, slug, **_):
        deleted = delete_worlds(World.objects.filter(slug=slug))
        if not deleted:
            raise CommandError(f"no world named {slug!r}")
        self.stdout.write(f"deleted {slug}")

    def do_prune(self, older_than, keep_failed, **_):
        cutoff = timezone.now() - parse_age(older_than)
        old = World.objects.filter(is_template=False, created_at__lt=cutoff)
        if keep_failed:
            old = old.exclude(outcome="failed")
        self.stdout.write(f"pruned {delete_worlds(old)} world(s)")
