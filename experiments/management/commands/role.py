from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from experiments.roles import ROLE_PERMISSIONS, add_user_to_role, role_names


class Command(BaseCommand):
    help = "Give a user a role (operators, reviewers, viewers), or take it away with --remove."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=sorted(ROLE_PERMISSIONS))
        parser.add_argument("--remove", action="store_true")

    def handle(self, *args, username, role, remove, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(
                f"no user named {username!r} (create one with createsuperuser or the admin)"
            ) from exc
        if remove:
            user.groups.remove(*user.groups.filter(name=role))
        else:
            add_user_to_role(user, role)
        self.stdout.write(f"{username}: {', '.join(role_names(user)) or 'no role (read only)'}")
