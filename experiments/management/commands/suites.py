"""``suites load FILE...`` stores suites (``suites load --builtin`` the ones shipped in
experiments/builtin_suites/); ``suites check`` runs the oracle and self-tests of every variant of
a stored suite (``--suite``) or a file (``--file``), or of a sample of them (``--sample``)."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from experiments.builtin import load_builtin_suites
from experiments.models import TaskSuite
from experiments.oracle import check_tasks, saturated_tasks
from experiments.suites import SuiteError, load_suite, save_suite


class Command(BaseCommand):
    help = (
        "Load task suites from YAML files, or check that every variant of a suite is solvable and checkable."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="validate and store suites")
        load.add_argument("files", nargs="*", help="suite files; none with --builtin: the shipped suites")
        load.add_argument(
            "--builtin",
            action="store_true",
            help="mark them as shipped with RLVR Studio; without files, load the shipped suites",
        )
        check = sub.add_parser("check", help="oracle and mutation testing of every variant")
        check.add_argument(
            "--suite", action="append", default=[], help="a stored suite (repeatable); default all"
        )
        check.add_argument(
            "--file", action="append", default=[], help="a suite file, checked without storing it"
        )
        check.add_argument("--task", action="append", default=[], help="only these task ids (repeatable)")
        check.add_argument(
            "--sample", type=int, default=None, help="only the first N variants of each split of each task"
        )
        check.add_argument("--split", choices=("train", "test"), help="only this split")
        check.add_argument("--json", action="store_true", help="print one JSON document instead of lines")

    def handle(self, *args, action, **options):
        if action == "load":
            return self.load(options["files"], options["builtin"])
        return self.check_suites(
            options["suite"],
            options["file"],
            options["json"],
            tasks=options["task"],
            sample=options["sample"],
            splits=(options["split"],) if options["split"] else ("train", "test"),
        )

    def load(self, files, builtin):
        if not files and not builtin:
            raise CommandError("name the suite files to load, or --builtin for the shipped suites")
        if not files:
            for path, outcome in load_builtin_suites():
                self.stdout.write(f"{outcome.suite}: {outcome.state} from {path}")
            return
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

    def check_suites(self, suites, files, as_json, *, tasks=(), sample=None, splits=("train", "test")):
        reports = []
        for spec in self._specs(suites, files):
            chosen = [t for t in spec.tasks if not tasks or t.id in tasks]
            for report in check_tasks(chosen, sample=sample, splits=splits):
                reports.append((spec.name, report))
                if not as_json:
                    self.stdout.write(report.line(prefix=f"{spec.name}/"))
        failed = sum(not r.passed for _, r in reports)
        summary = f"{len(reports) - failed} passed, {failed} failed"
        saturated = saturated_tasks(reports)
        if as_json:
            doc = {
                "variants": [{"suite": s, **r.to_dict()} for s, r in reports],
                "saturated_tasks": saturated,
                "passed": len(reports) - failed,
                "failed": failed,
            }
            self.stdout.write(json.dumps(doc, indent=2))
        else:
            for task, reasons in saturated.items():
                self.stdout.write(
                    f"saturated: {task}: {reasons[0]}"
                    + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")
                )
            self.stdout.write(summary)
        if failed:
            raise CommandError(summary)
