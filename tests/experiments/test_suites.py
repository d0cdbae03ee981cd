"""Suite YAML: validation errors that name the line and column, and the round trip."""

import textwrap
from pathlib import Path

import pytest

from experiments.suites import SuiteError, dump_suite, load_suite

EXAMPLE = (Path(__file__).parent / "suites" / "example.yaml").read_text()


def suite(body):
    """A one-task suite around ``body`` (the task's keys after its id, two-space indented)."""
    head = "suite: s\ndefaults: {seed: acme}\ntasks:\n  - id: t\n    scenario: sc\n"
    return head + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"


def problems(text):
    with pytest.raises(SuiteError) as caught:
        load_suite(text)
    return [str(p) for p in caught.value.problems]


def test_it_names_the_line_of_an_unknown_check_type():
    text = suite("""
        instruction: Do it.
        expect:
          - issue_exists: {issue: OPS-1}
          - isue_fields: {issue: OPS-1, fields: {status: Done}}
    """)
    assert problems(text) == [
        "line 9, column 9: unknown check type 'isue_fields' (did you mean 'issue_fields'?); check types: "
        "answer, called, comment_exists, issue_count, issue_exists, issue_fields, link_exists, max_calls, "
        "no_collateral, no_errors, not_called, order, page_exists, page_fields"
    ]


def test_it_reports_malformed_yaml_with_its_line_and_column():
    (problem,) = problems('suite: s\ntasks:\n  - id: t\n    instruction: "never closed\n')
    assert problem.startswith("line 5, column 1: this is not valid YAML")
    (problem,) = problems("suite: s\ntasks:\n  - id: t\n   scenario: x\n")
    assert problem.startswith("line 4, column 4: this is not valid YAML: ")


def test_it_names_an_unknown_task_key_and_suggests_the_right_one():
    text = suite("""
        instructions: Do it.
        expect: [{issue_exists: {issue: OPS-1}}]
    """)
    assert problems(text) == [
        "line 4, column 5: a task is missing 'instruction'",
        "line 6, column 5: unknown key 'instructions' in a task (did you mean 'instruction'?); "
        "known keys: id, scenario, seed, description, instruction, vars, split, variants, max_turns, setup, "
        "expect, trace, reward, "
        "solution",
    ]


def test_it_says_which_value_has_the_wrong_type():
    text = suite("""
        instruction: Do it.
        max_turns: many
        expect: [{issue_exists: {issue: OPS-1, exists: maybe}}]
    """)
    assert problems(text) == [
        "line 7, column 16: task 't': 'max_turns' should be a whole number, not 'many'",
        "line 8, column 52: 'exists' of check 'issue_exists' should be true or false, not 'maybe'",
    ]


def test_it_names_missing_check_parameters_and_unknown_ones():
    text = suite("""
        instruction: Do it.
        expect:
          - issue_fields:
              issue: OPS-1
              feilds: {status: Done}
          - issue_fields: {issue: OPS-1, fields: {stauts: Done}}
          - issue_exists: {}
    """)
    assert problems(text) == [
        "line 9, column 11: check 'issue_fields' is missing 'fields'",
        "line 10, column 11: unknown key 'feilds' in check 'issue_fields' (did you mean 'fields'?); "
        "known keys: "
        "issue, where, new, fields, name, required, weight",
        "line 11, column 47: unknown fields 'stauts' in check 'issue_fields' (did you mean 'status'?); "
        "known: summary, description, project, type, status, status_category, priority, resolution, "
        "assignee, reporter, "
        "labels, components, fix_versions, parent, sprint, due_date, story_points",
        "line 12, column 23: check 'issue_exists' needs exactly one of 'issue' or 'where'",
    ]


def test_it_rejects_bad_templates_and_undefined_vars():
    text = suite("""
        vars: {status: [Done, In Progress]}
        instruction: Move it to {{ status }} by {{ deadline }}.
        expect:
          - issue_fields: {issue: OPS-1, fields: {status: "{{ status"}}
          - answer: {equals: "{{ status | shout }}"}
    """)
    assert problems(text) == [
        "line 7, column 18: '{{ deadline }}' in task 't' uses 'deadline', which is not defined "
        "(vars and saved "
        "results: status)",
        "line 9, column 55: bad template in task 't': '{{' is never closed with '}}'",
        "line 10, column 26: bad template in task 't': unknown filter 'shout' in '{{ status | shout }}' "
        "(known: "
        "json, length, lower, strip, title, upper)",
    ]


def test_it_accepts_names_saved_by_setup_steps_in_later_templates():
    text = suite("""
        setup:
          - {method: POST, path: /rest/api/3/issue, body: {fields: {summary: x}}, save: created}
        instruction: Close {{ created.key }}.
        expect: [{issue_fields: {issue: "{{ created.key }}", fields: {status: Done}}}]
    """)
    assert load_suite(text).tasks[0].setup[0]["save"] == "created"


def test_it_puts_trace_checks_under_trace_and_state_checks_under_expect():
    text = suite("""
        instruction: Do it.
        expect: [{called: "GET /rest/api/3/myself"}]
        trace: [{answer: {equals: x}}]
    """)
    assert problems(text) == [
        "line 7, column 15: 'called' is a trace check; it belongs under 'trace', not 'expect'",
        "line 8, column 14: 'answer' is an answer check; it belongs under 'expect', not 'trace'",
    ]


def test_it_checks_call_patterns_holdouts_reward_weights_and_presets():
    text = suite("""
        vars: {who: [a, b]}
        split: {holdout: [whom]}
        instruction: Do it for {{ who }}.
        trace:
          - called: "FETCH /rest/api/3/myself"
          - order: {calls: ["GET /rest/api/3/myself", "nonsense"]}
        reward: {weights: {caled: 2}}
    """)
    assert problems(text) == [
        "line 7, column 23: 'whom' is held out but is not one of the vars of task 't'",
        "line 10, column 17: 'FETCH /rest/api/3/myself' is not a call pattern like 'POST /rest/api/3/issue'",
        "line 11, column 51: 'nonsense' is not a call pattern like 'POST /rest/api/3/issue'",
        "line 12, column 24: no check is named 'caled' (did you mean 'called'?) (there are: called, order)",
    ]
    (problem,) = problems(suite("instruction: x\nexpect: [{answer: {}}]\nreward: generous\n"))
    assert problem == "line 8, column 13: unknown reward preset 'generous'; presets: binary, dense, weighted"


def test_it_finds_duplicate_keys_and_task_ids_and_empty_suites():
    task = "  - {id: a, scenario: x, seed: acme, instruction: i, trace: [{max_calls: 3}]}\n"
    text = "suite: s\nsuite: t\ntasks:\n" + task + task
    assert problems(text) == [
        "line 2, column 1: 'suite' appears twice in the suite",
        "line 5, column 5: task id 'a' is used twice (first on line 4)",
    ]
    assert problems("") == ["line 1, column 1: the suite is empty; it needs at least 'suite' and 'tasks'"]


def test_it_needs_checks_and_a_seed():
    text = "suite: s\ntasks:\n  - id: a\n    scenario: x\n    instruction: i\n"
    assert problems(text) == [
        "line 3, column 5: task 'a' has no checks: add 'expect' (state checks) or 'trace' (call checks)",
        "line 3, column 5: task 'a' needs a 'seed' (the seed world, e.g. acme) or one under 'defaults'",
    ]  # both at the task's first key, in message order


def test_a_held_out_family_must_be_some_tasks_scenario():
    text = suite("instruction: x\ntrace: [{max_calls: 2}]\n") + "holdout_families: [sc, page-create]\n"
    assert problems(text) == [
        "line 8, column 24: no task has scenario 'page-create'; held-out families name task scenarios"
    ]


def test_the_example_suite_loads_with_defaults_applied():
    spec = load_suite(EXAMPLE)
    assert spec.name == "example" and spec.version == 2
    first = spec.tasks[0]
    assert (first.seed, first.max_turns, first.variants) == ("acme", 8, {"train": 6, "test": 3})
    assert [c.name for c in first.checks] == ["issue_fields", "called", "no_collateral", "max_calls"]
    assert [c.required for c in first.checks] == [True, True, True, False]
    assert first.trace[0].params == {"call": "POST /rest/api/3/issue/{{ issue.key }}/transitions"}
    assert spec.tasks[1].reward == {"preset": "weighted", "weights": {"page_fields": 3}}
    assert spec.tasks[1].split.family_heldout and not first.split.family_heldout


def test_load_dump_load_gives_the_same_suite():
    spec = load_suite(EXAMPLE)
    text = dump_suite(spec)
    assert load_suite(text) == spec
    assert dump_suite(load_suite(text)) == text
    assert "max_calls: 6" in text  # shorthand checks stay short


def test_dump_keeps_names_weights_and_required_flags_that_differ_from_the_defaults():
    text = suite("""
        instruction: x
        trace:
          - max_calls: {max: 3, required: true, weight: 2.5, name: budget}
          - no_errors: 1
    """)
    spec = load_suite(text)
    again = load_suite(dump_suite(spec))
    assert again == spec
    budget = again.tasks[0].trace[0]
    assert (budget.name, budget.weight, budget.required) == ("budget", 2.5, True)


def test_it_names_an_unknown_solver():
    text = suite("instruction: x\ntrace: [{max_calls: 2}]\nsolution: {solver: transition_isue}\n")
    assert problems(text) == [
        "line 8, column 24: unknown solver 'transition_isue' (did you mean 'transition_issue'?); "
        "solvers: for_each_issue, transition_issue"
    ]
