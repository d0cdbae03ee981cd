"""Who may do what. Every signed-in user can read every page; these groups add the rest.

- operators: launch, pause, resume and cancel experiments; edit task suites; review episodes.
- reviewers: review episodes (verdicts, labels, comments, assignments).
- viewers: read only.
"""

from django.contrib.auth.models import Group, Permission

LAUNCH_EXPERIMENT = "experiments.launch_experiment"
EDIT_SUITE = "experiments.edit_suite"
REVIEW_EPISODE = "experiments.review_episode"

ROLE_PERMISSIONS = {
    "operators": [LAUNCH_EXPERIMENT, EDIT_SUITE, REVIEW_EPISODE],
    "reviewers": [REVIEW_EPISODE],
    "viewers": [],
}


def ensure_roles(**kwargs):
    """Create the role groups and set their permissions exactly; safe to run any number of times."""
    for group_name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        codenames = [perm.split(".", 1)[1] for perm in perms]
        group.permissions.set(
            Permission.objects.filter(content_type__app_label="experiments", codename__in=codenames)
        )


def add_user_to_role(user, role):
    if role not in ROLE_PERMISSIONS:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLE_PERMISSIONS)}")
    ensure_roles()
    user.groups.add(Group.objects.get(name=role))


def role_names(user):
    return sorted(user.groups.filter(name__in=ROLE_PERMISSIONS).values_list("name", flat=True))
