import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from experiments.builtin import load_builtin_suites
from experiments.roles import add_user_to_role, ensure_roles
from simulator.seeding import load_seed

BUILTIN_SEEDS = ["acme"]


class Command(BaseCommand):
    help = (
        "Prepare a migrated database for use: role groups, built-in data, and with "
        "--demo-user a login in the operators group (its password is printed). Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--demo-user", action="store_true", help="create or refresh the demo login")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="printed with the login")

    def handle(self, *args, demo_user, username, url, **options):
        ensure_roles()
        self.stdout.write("roles: operators, reviewers, viewers")
        for seed in BUILTIN_SEEDS:
            template = load_seed(seed)  # idempotent: reloads only when the seed file changed
            self.stdout.write(f"simulator seed: {seed} (template world {template.slug})")
        for _path, outcome in load_builtin_suites():  # idempotent: stored only when changed
            self.stdout.write(f"task suite: {outcome.suite} ({outcome.state})")
        if demo_user:
            password = self._demo_password()
            user, created = get_user_model().objects.get_or_create(username=username)
            user.set_password(password)
            user.save()
            add_user_to_role(user, "operators")
            self.stdout.write(
                self.style.SUCCESS(
                    f"\n  RLVR Studio: {url}\n  login: {username}   password: {password}   "
                    f"({'created' if created else 'existing'} user, group operators)\n"
                )
            )

    def _demo_password(self):
        # Random per machine, kept under var/ so it survives restarts and never sits in git.
        path = settings.VAR_DIR / "demo-password.txt"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(9) + "\n")
            path.chmod(0o600)
        return path.read_text().strip()
