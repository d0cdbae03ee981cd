"""The task suites shipped with RLVR Studio (experiments/builtin_suites/*.yaml), and loading them:
``load_builtin_suites()`` stores each one that is new or whose file changed since it was last
loaded, and leaves the others alone, so it is safe to run at every deploy."""

from dataclasses import dataclass
from pathlib import Path

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin_suites"


@dataclass
class LoadOutcome:
    suite: str
    state: str  # "created", "updated" or "unchanged"


def builtin_suite_files():
    return sorted(BUILTIN_DIR.glob("*.yaml"))


def load_builtin_suites():
    """[(path, LoadOutcome)] for each shipped suite file; raises SuiteError on a broken one."""
    from experiments.models import TaskSuite
    from experiments.suites import load_suite, save_suite, source_hash

    out = []
    for path in builtin_suite_files():
        text = path.read_text()
        name = load_suite(text).name
        stored = TaskSuite.objects.filter(name=name).only("source_hash", "builtin").first()
        if stored is not None and stored.source_hash == source_hash(text) and stored.builtin:
            out.append((path, LoadOutcome(name, "unchanged")))
            continue
        save_suite(text, builtin=True)
        out.append((path, LoadOutcome(name, "created" if stored is None else "updated")))
    return out
