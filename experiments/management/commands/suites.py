"""``suites load FILE...`` stores suites; ``suites check`` runs the oracle and self-tests of
every variant of a stored suite (``--suite``) or a file (``--file``)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from experiments.models import TaskSuite
from experiments.suites import SuiteError, load_suite, save_suite, variants


class Command(BaseCommand):
    help = (
        "Load task suites from YAML files, or check that every variant of a suite is solvable and checkable."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="validate and store suites")
        load.add_argument("files", nargs="+")
        load.add_argument("--builtin", action="store_true", help="mark them as shipped with RLVR Studio")
        check = sub.add_parser("check", help="oracle and mutation testing of every variant")
        check.add_argument(
            "--suite", action="append", default=[], help="a stored suite (repeatable); default all"
        )
        check.add_argument(
            "--file", action="append", default=[], help="a suite file, checked without storing it"
        )
        check.add_argument("--json", action="store_true", help="print one JSON document instead of lines")

    def handle(self, *args, action, **options):
        if action == "load":
            return self.load(options["files"], options["builtin"])
        return self.check(options["suite"], options["file"], options["json"])

    def load(self, files, builtin):
        for name in files:
            text = Path(name).read_text()
            try:
                suite = save_suite(text, builtin=builtin)
            except SuiteError as err:
                raise CommandError(f"{name}:\n{err}") from None
            self.stdout.write(f"{suite.name}: {suite.tasks.count()} task(s) from {name}")

    def _specs(self, suites, files):
        specs = []
        for name in files:
            try:
                specs.append(load_suite(Path(name).read_text()))
            except SuiteError as err:
                raise CommandError(f"{name}:\n{err}") from None
        stored = TaskSuite.objects.all()
        if suites:
            stored = stored.filter(name__in=suites)
            missing = set(suites) - set(stored.values_list("name", flat=True))
            if missing:
                raise CommandError(f"no stored suite named {', '.join(sorted(missing))}")
        if suites or not files:
            specs += [s.spec() for s in stored]
        return specs

    def check(self, suites, files, as_json):
        from experiments.oracle import check_variant

        reports = []
        for spec in self._specs(suites, files):
            for task in spec.tasks:
                for split in ("train", "test"):
                    for variant in variants(task, split):
                        report = check_variant(variant)
                        reports.append((spec.name, report))
                        if not as_json:
                            self.stdout.write(report.line(prefix=f"{spec.name}/"))
        failed = sum(not r.passed for _, r in reports)
        summary = f"{len(reports) - failed} passed, {failed} failed"
        if as_json:
            doc = {
                "variants": [{"suite": s, **r.to_dict()} for s, r in reports],
                "passed": len(reports) - failed,
                "failed": failed,
            }
            self.stdout.write(json.dumps(doc, indent=2))
        else:
            self.stdout.write(summary)
        if failed:
            raise CommandError(summary)
