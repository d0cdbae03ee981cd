"""Task suite pages: the list, a suite with its tasks, a task with a sample variant, its check
and a dry run of its oracle, the YAML editor (paste or upload, errors shown on their lines) and
the YAML download.

Reading is open to every signed-in user; saving a suite, running a check and a dry run (which
forks a world) need the ``experiments.edit_suite`` permission (operators). Suite text and
everything drawn from it — API bodies included — is untrusted: templates escape it all.
"""

import yaml
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from experiments import selectors
from experiments.models import Task, TaskCheck, TaskSuite
from experiments.roles import EDIT_SUITE
from experiments.services import check_task, dry_run
from experiments.suites import Problem, SuiteError, TaskSpec, load_suite, save_suite
from experiments.variants import VariantError, draw_variants
from simulator import selectors as sim_selectors

MAX_UPLOAD_BYTES = 1_000_000
STARTER = """suite: my-suite
description: What these tasks teach.
defaults:
  seed: acme
tasks:
  - id: read-status
    scenario: issue-read
    vars:
      issue: {from: issues, where: {project: OPS}}
    instruction: What is the status of {{ issue.key }}? Answer with the status name.
    expect:
      - answer: {equals: "{{ issue.status }}"}
    trace:
      - called: GET /rest/api/3/issue/{{ issue.key }}
    solution:
      - {method: GET, path: "/rest/api/3/issue/{{ issue.key }}"}
      - final: "{{ issue.status }}"
"""


def _context(**values):
    return {"section": "suites", **values}


def _require_editor(request):
    if not request.user.has_perm(EDIT_SUITE):
        raise PermissionDenied("Only operators may change task suites.")


def _suite(name):
    return get_object_or_404(TaskSuite, name=name)


def suites_index(request):
    return render(
        request,
        "experiments/suites.html",
        _context(rows=selectors.suite_rows(), can_edit=request.user.has_perm(EDIT_SUITE)),
    )


def suite_detail(request, name):
    """The suite's tasks, each with its first variant (train, or test for a held-out family)."""
    suite = _suite(name)
    tasks, worlds = [], {}
    for task in suite.tasks.select_related("last_check"):
        spec = task.task_spec()
        train, test = selectors.task_variant_counts(task)
        if spec.seed not in worlds:
            worlds[spec.seed] = sim_selectors.template_world(spec.seed)
        split = "test" if spec.split.family_heldout else "train"
        variant, why_not = _sample(spec, split, 0, world=worlds[spec.seed])
        tasks.append(
            {
                "task": task,
                "spec": spec,
                "train": train,
                "test": test,
                "checks": [c.name for c in spec.checks],
                "reward": spec.reward.get("preset", "dense"),
                "solution": _solution_kind(spec.solution),
                "sample": _shown(variant) if variant else None,
                "sample_key": f"{split}/0",
                "why_not": why_not,
            }
        )
    return render(
        request,
        "experiments/suite.html",
        _context(suite=suite, tasks=tasks, can_edit=request.user.has_perm(EDIT_SUITE)),
    )


def _solution_kind(solution):
    if solution is None:
        return "none"
    if isinstance(solution, dict):
        return f"solver {solution.get('solver')}"
    return f"{sum('final' not in s for s in solution)} call(s)"


def _task(suite, task_id):
    task = (
        Task.objects.select_related("suite", "last_check__checked_by")
        .filter(suite=suite, task_id=task_id)
        .first()
    )
    if task is None:
        raise Http404(f"no task {task_id!r} in suite {suite.name!r}")
    return task


def _sample(spec, split, index, *, world=None):
    """The sample variant (split, index) of a task, or (None, why not)."""
    if spec.split.family_heldout and split == "train":
        return None, "this task's family is held out: it has test variants only"
    try:
        drawn = draw_variants(spec, split, count=index + 1, world=world)
    except VariantError as err:
        return None, str(err)
    if len(drawn) <= index:
        return None, f"the task has no {split} variant {index}"
    return drawn[index], None


def _as_yaml(value):
    if value in (None, [], {}):
        return ""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)


def _shown(variant):
    """A variant as the pages show it: the instruction, and the rest as YAML text."""
    return {
        "instruction": variant.instruction,
        "values": _as_yaml(variant.values),
        "setup": _as_yaml(variant.setup),
        "expect": _as_yaml([{c["type"]: c["params"], "name": c["name"]} for c in variant.expect]),
        "trace": _as_yaml([{c["type"]: c["params"], "name": c["name"]} for c in variant.trace]),
        "solution": _as_yaml(variant.solution),
        "late": variant.late,
    }


def _chosen(params, spec):
    """(split, index) of the variant asked for, the task's first variant by default."""
    split = params.get("split", "test" if spec.split.family_heldout else "train")
    if split not in ("train", "test"):
        split = "train"
    try:
        index = max(0, int(params.get("index", 0)))
    except ValueError:
        index = 0
    return split, index


def _task_page(request, suite, task, check_error=None, dry=None):
    spec = TaskSpec.from_dict(task.spec)
    split, index = _chosen(request.POST if request.method == "POST" else request.GET, spec)
    variant, why_not = _sample(spec, split, index)
    shown = _shown(variant) if variant is not None else None
    train, test = selectors.task_variant_counts(task)
    return render(
        request,
        "experiments/suite_task.html",
        _context(
            suite=suite,
            task=task,
            spec=spec,
            split=split,
            index=index,
            variant=shown,
            why_not=why_not,
            train=train,
            test=test,
            last_check=getattr(task, "last_check", None),
            check_error=check_error,
            dry=dry,
            can_edit=request.user.has_perm(EDIT_SUITE),
        ),
    )


def suite_task(request, name, task_id):
    suite = _suite(name)
    return _task_page(request, suite, _task(suite, task_id))


@require_POST
def suite_check(request, name, task_id):
    """Run ``suites check`` on the first variant of each split of one task, keep it as the task's
    last check and show it."""
    _require_editor(request)
    suite = _suite(name)
    task = _task(suite, task_id)
    try:
        check_task(task.task_spec(), task=task, source=TaskCheck.PAGE, user=request.user, sample=1)
    except VariantError as err:
        response = _task_page(request, suite, task, check_error=str(err))
        response.status_code = 409
        return response
    return _task_page(request, suite, _task(suite, task_id))


@require_POST
def suite_dry_run(request, name, task_id):
    """Play the oracle of the variant (split, index) posted, once, and show its trace and every
    check's result under the variant."""
    _require_editor(request)
    suite = _suite(name)
    task = _task(suite, task_id)
    spec = task.task_spec()
    variant, _why_not = _sample(spec, *_chosen(request.POST, spec))
    if variant is None:  # the page says why
        response = _task_page(request, suite, task)
        response.status_code = 409
        return response
    return _task_page(request, suite, task, dry=dry_run(variant))


def suite_download(request, name):
    suite = _suite(name)
    response = HttpResponse(suite.source, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{suite.name}.yaml"'
    return response


@require_http_methods(["GET", "POST"])
def suite_new(request):
    _require_editor(request)
    return _editor(request, None, STARTER)


@require_http_methods(["GET", "POST"])
def suite_edit(request, name):
    _require_editor(request)
    suite = _suite(name)
    return _editor(request, suite, suite.source)


def _editor(request, suite, initial):
    """The YAML editor: on POST, the uploaded file (if any) or the pasted text is validated and
    saved; when it does not load, the page shows each problem under its line and keeps the text."""
    text, problems = initial, []
    if request.method == "POST":
        text, problems = _submitted_text(request)
        if not problems:
            try:
                problems = _builtin_clash(text)
                if not problems:
                    saved = save_suite(text)
                    return redirect("suite", name=saved.name)
            except SuiteError as err:
                problems = err.problems
    return render(
        request,
        "experiments/suite_edit.html",
        _context(
            suite=suite, text=text, problems=problems, listing=_listing(text, problems) if problems else []
        ),
        status=400 if problems else 200,
    )


def _submitted_text(request):
    upload = request.FILES.get("file")
    if upload is None:
        return request.POST.get("source", "").replace("\r\n", "\n"), []
    if upload.size > MAX_UPLOAD_BYTES:
        return request.POST.get("source", ""), [
            Problem(
                1, 1, f"the file is {upload.size} bytes; a suite file may have at most {MAX_UPLOAD_BYTES}"
            )
        ]
    try:
        return upload.read().decode("utf-8").replace("\r\n", "\n"), []
    except UnicodeDecodeError:
        return request.POST.get("source", ""), [Problem(1, 1, "the file is not UTF-8 text")]


def _builtin_clash(text):
    """A suite of the name of a built-in one cannot be saved from the page: ``suites load
    --builtin`` would replace it at the next deploy."""
    spec = load_suite(text)
    if TaskSuite.objects.filter(name=spec.name, builtin=True).exists():
        line = next((n for n, row in enumerate(text.splitlines(), 1) if row.startswith("suite:")), 1)
        return [
            Problem(
                line,
                1,
                f"'{spec.name}' is a built-in suite, replaced by 'suites load --builtin' at each deploy; "
                "save your version under another name",
            )
        ]
    return []


def _listing(text, problems):
    """The text's lines, numbered, each with the problems found on it (problems past the end go
    with the last line)."""
    lines = text.split("\n") or [""]
    rows = [{"number": n, "text": line, "problems": []} for n, line in enumerate(lines, 1)]
    for problem in problems:
        rows[min(max(problem.line, 1), len(rows)) - 1]["problems"].append(problem)
    return rows
