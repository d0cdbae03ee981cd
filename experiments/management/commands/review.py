"""``manage.py review``: the review tools the pages use, from the command line.

    python manage.py review flag [--experiment 3]                # run the suspicion rules
    python manage.py review export --format jsonl --out r.jsonl [--filter success=0 ...] [--all]

``flag`` keeps what the suspicion rules find on passed episodes on their reviews (so the browser's
"flagged" filter finds them); ``export`` writes the reviewed episodes among the browser's filters
as the page's export does (JSONL: a chat transcript, the calls, the checks and the review per line).
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from experiments import replay, review


class Command(BaseCommand):
    help = "Flag suspicious passed episodes, or export reviewed episodes as JSONL or CSV."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        flag = sub.add_parser("flag", help="run the suspicion rules over passed episodes")
        flag.add_argument("--experiment", type=int, default=None)
        export = sub.add_parser("export", help="write reviewed episodes as JSONL or CSV")
        export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        export.add_argument("--out", default="-", help="file to write (default: standard output)")
        export.add_argument(
            "--filter", action="append", default=[], help="a browser filter as name=value (repeatable)"
        )
        export.add_argument("--all", action="store_true", help="every matching episode, reviewed or not")

    def handle(self, *args, **options):
        if options["action"] == "flag":
            filters = {"experiment": str(options["experiment"])} if options["experiment"] else {}
            flagged = review.flag_episodes(replay.filtered_episodes(filters))
            self.stdout.write(f"{flagged} episode(s) flagged")
            return
        filters = {}
        for item in options["filter"]:
            name, sep, value = item.partition("=")
            if not sep or name not in replay.FILTER_NAMES:
                raise CommandError(
                    f"--filter {item!r}: use name=value with one of {', '.join(replay.FILTER_NAMES)}"
                )
            filters[name] = value
        rows = review.export_episodes(replay.clean_filters(filters), reviewed_only=not options["all"])
        if options["format"] == "jsonl":
            lines = review.jsonl_lines(review.export_record(*row) for row in rows)
        else:
            lines = review.csv_lines(review.csv_row(*row) for row in rows)
        out = sys.stdout if options["out"] == "-" else open(options["out"], "w", encoding="utf-8", newline="")  # noqa: SIM115
        try:
            for line in lines:
                out.write(line)
        finally:
            if out is not sys.stdout:
                out.close()
