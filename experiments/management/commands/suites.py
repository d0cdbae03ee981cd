"""``suites load FILE...`` stores suites (``suites load --builtin`` the ones shipped in
experiments/builtin_suites/); ``suites check`` runs the oracle and self-tests of every variant of
a stored suite (``--suite``) or a file (``--file``), or of a sample of them (``--sample``), and
keeps each stored task's result as its last check; ``suites demos --suite S`` writes the oracle
demonstrations of a split as the trainer's chat transcripts, one JSON object per line."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from experiments.builtin import load_builtin_suites
from experiments.models import TaskCheck, TaskSuite
from experiments.oracle import saturated_tasks
from experiments.services import check_task, demonstration_records
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
        # The trainer's defaults are filled in by demos(): importing experiments.training here
        # would load torch for every suites command.
        demos = sub.add_parser("demos", help="oracle demonstrations as the trainer's chat transcripts")
        demos.add_argument(
            "--suite", required=True, help="a stored suite's name (built-ins load themselves) or a YAML file"
        )
        demos.add_argument("--split", choices=("train", "test"), default="train")
        demos.add_argument("--out", type=Path, default=None, help="the JSONL file to write (default: stdout)")
        demos.add_argument("--task", action="append", default=[], help="only these task ids (repeatable)")
        demos.add_argument("--sample", type=int, default=None, help="only the first N variants of each task")
        demos.add_argument(
            "--model", help="whose tokenizer cuts long observations, as in training (default: train's)"
        )
        demos.add_argument("--observation-tokens", type=int, help="default: train's")
        demos.add_argument("--tool-docs", help="families or used (default: train's)")

    def handle(self, *args, action, **options):
        if action == "load":
            return self.load(options["files"], options["builtin"])
        if action == "demos":
            return self.demos(**options)
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

    def demos(self, *, suite, split, out, task, sample, model, observation_tokens, tool_docs, **_options):
        """One JSON object per line for each variant whose oracle scores 1.0; the variants left out
        and the count go to stderr."""
        from experiments.training import TOOL_DOCS, TrainConfig, TrainingError, load_suite_spec
        from trainer.models import load_tokenizer

        defaults = TrainConfig()
        tool_docs = tool_docs or defaults.tool_docs
        if tool_docs not in TOOL_DOCS:
            raise CommandError(f"--tool-docs is one of {', '.join(TOOL_DOCS)}, not {tool_docs!r}")
        try:
            spec = load_suite_spec(suite)
            records, skipped = demonstration_records(
                spec,
                split,
                tokenizer=load_tokenizer(model or defaults.model),
                tasks=task,
                per_task=sample,
                tool_docs=tool_docs,
                observation_tokens=observation_tokens or defaults.observation_tokens,
            )
        except (SuiteError, TrainingError) as err:
            raise CommandError(str(err)) from None
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        if out is None:
            self.stdout.write(text, ending="")
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        for line in skipped:
            self.stderr.write(f"skipped {line}")
        where = f" to {out}" if out else ""
        self.stderr.write(
            f"{len(records)} demonstration(s) of {spec.name}/{split}{where}, {len(skipped)} skipped"
        )

    def _specs(self, suites, files):
        """[(SuiteSpec, the stored TaskSuite or None for a file)]."""
        specs = []
        for name in files:
            try:
                specs.append((load_suite(Path(name).read_text()), None))
            except SuiteError as err:
                raise CommandError(f"{name}:\n{err}") from None
        stored = TaskSuite.objects.all()
        if suites:
            stored = stored.filter(name__in=suites)
            missing = set(suites) - set(stored.values_list("name", flat=True))
            if missing:
                raise CommandError(f"no stored suite named {', '.join(sorted(missing))}")
        if suites or not files:
            specs += [(s.spec(), s) for s in stored]
        return specs

    def check_suites(self, suites, files, as_json, *, tasks=(), sample=None, splits=("train", "test")):
        """Check each task; a stored suite's tasks keep the result as their last check (the page
        shows it), a file's are only printed."""
        reports = []
        for spec, stored in self._specs(suites, files):
            rows = {t.task_id: t for t in stored.tasks.select_related("suite")} if stored else {}
            for task in spec.tasks:
                if tasks and task.id not in tasks:
                    continue

                def printed(report, name=spec.name):
                    reports.append((name, report))
                    if not as_json:
                        self.stdout.write(report.line(prefix=f"{name}/"))

                check_task(
                    task,
                    task=rows.get(task.id),
                    source=TaskCheck.COMMAND,
                    sample=sample,
                    splits=splits,
                    on_variant=printed,
                )
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
