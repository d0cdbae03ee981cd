"""The built-in suites: they load (idempotently), have the families and variant counts promised,
keep test values out of train, and their oracles and self-tests pass on a sample of variants.

The full check of every variant is slow (minutes); it runs when RLVR_FULL_SUITE_CHECK=1 is set,
and its figures are in docs/suites.md.
"""

import json
import os
import re
import shutil
from collections import Counter

import pytest
from django.core.management import call_command

from experiments import builtin
from experiments.models import TaskSuite
from experiments.suites import load_suite
from experiments.training import (
    demonstrations,
    load_suite_spec,
    suite_system_prompt,
    transcript_messages,
)
from experiments.variants import draw_variants
from trainer.models import load_tokenizer

SUITES = {path.stem: load_suite(path.read_text()) for path in builtin.builtin_suite_files()}
CORE_FAMILIES = {
    "issue-read",
    "issue-create",
    "ticket-transition",
    "labels",
    "page-read",
    "page-create",
    "infeasible",
}


@pytest.fixture
def acme(db):
    from simulator.seeding import load_seed

    return load_seed("acme")


def train_counts(spec):
    counts = Counter()
    for task in spec.tasks:
        counts[task.scenario] += 0 if task.split.family_heldout else task.variants["train"]
    return counts


def test_the_built_in_suites_are_the_two_promised():
    assert set(SUITES) == {"atlassian-core", "jira-workflows"}


def test_atlassian_core_has_the_paper_s_families_with_20_train_variants_each():
    counts = train_counts(SUITES["atlassian-core"])
    assert set(counts) == CORE_FAMILIES
    assert all(n >= 20 for n in counts.values()), counts


def test_jira_workflows_has_at_least_12_multi_step_families_each_with_a_test_split():
    spec = SUITES["jira-workflows"]
    families = {t.scenario for t in spec.tasks} - {"infeasible"}
    assert len(families) >= 12
    assert all(t.variants["test"] >= 5 and t.variants["train"] >= 20 for t in spec.tasks)


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_suite_has_an_infeasible_task(suite):
    assert any(t.scenario == "infeasible" for t in SUITES[suite].tasks)


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_no_held_out_value_of_a_test_variant_appears_in_train(acme, suite):
    for task in SUITES[suite].tasks:
        held = set(task.vars) if task.split.holdout is None else set(task.split.holdout)
        assert held, f"{task.id} holds nothing out"
        train = draw_variants(task, "train", world=acme)
        test = draw_variants(task, "test", world=acme)
        assert len(train) == task.variants["train"] and len(test) == task.variants["test"]
        for name in held:
            seen = {json.dumps(v.values[name], sort_keys=True) for v in train}
            assert not seen & {json.dumps(v.values[name], sort_keys=True) for v in test}, (task.id, name)


def test_load_builtin_creates_then_leaves_then_updates(tmp_path, monkeypatch, db, capsys):
    for path in builtin.builtin_suite_files():
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(builtin, "BUILTIN_DIR", tmp_path)

    call_command("suites", "load", "--builtin")
    assert capsys.readouterr().out.splitlines() == [
        f"atlassian-core: created from {tmp_path / 'atlassian-core.yaml'}",
        f"jira-workflows: created from {tmp_path / 'jira-workflows.yaml'}",
    ]
    assert set(TaskSuite.objects.filter(builtin=True).values_list("name", flat=True)) == set(SUITES)

    call_command("suites", "load", "--builtin")
    assert capsys.readouterr().out.count("unchanged") == 2

    core = tmp_path / "atlassian-core.yaml"
    core.write_text(core.read_text().replace("version: 1", "version: 2", 1))
    call_command("suites", "load", "--builtin")
    out = capsys.readouterr().out
    assert "atlassian-core: updated" in out and "jira-workflows: unchanged" in out
    assert TaskSuite.objects.get(name="atlassian-core").version == 2


def first_task_of_each_family(spec):
    chosen = {}
    for task in spec.tasks:
        chosen.setdefault(task.scenario, task.id)
    return list(chosen.values())


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_a_sample_of_each_built_in_suite_passes_its_check(acme, suite, capsys):
    builtin.load_builtin_suites()
    args = ["suites", "check", "--suite", suite, "--sample", "1", "--split", "train"]
    for task_id in first_task_of_each_family(SUITES[suite]):
        args += ["--task", task_id]
    call_command(*args)
    lines = capsys.readouterr().out.splitlines()
    families = len({t.scenario for t in SUITES[suite].tasks})
    assert lines[-1] == f"{families} passed, 0 failed"
    assert not [line for line in lines if "saturated" in line]


@pytest.mark.skipif(
    not os.environ.get("RLVR_FULL_SUITE_CHECK"), reason="set RLVR_FULL_SUITE_CHECK=1 (minutes)"
)
@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_variant_of_each_built_in_suite_passes_its_check(acme, suite, capsys):
    builtin.load_builtin_suites()
    call_command("suites", "check", "--suite", suite)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].endswith(" passed, 0 failed")
    assert not [line for line in lines if "saturated" in line]


def test_a_training_run_reads_the_shipped_file_not_an_older_stored_copy(tmp_path, monkeypatch, db):
    for path in builtin.builtin_suite_files():
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(builtin, "BUILTIN_DIR", tmp_path)
    assert load_suite_spec("jira-workflows").version == 1

    workflows = tmp_path / "jira-workflows.yaml"
    workflows.write_text(workflows.read_text().replace("version: 1", "version: 2", 1))
    assert load_suite_spec("jira-workflows").version == 2


IDS = re.compile(r"712020:[0-9a-f-]+|\b\d{5,}\b")  # account ids, issue and page ids


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_held_out_demonstrations_use_no_id_the_model_cannot_see(acme, suite):
    """Every account, issue or page id a held-out demonstration sends has been shown to the model
    (system prompt, instruction, an earlier observation as rendered) or is one that train
    demonstrations teach too: otherwise SFT can only learn to guess it, as append-to-page's page
    id and reassign-open-issues' owner id once had it do."""
    spec = load_suite_spec(suite)
    tokenizer = load_tokenizer("tiny-random")
    system = suite_system_prompt(spec, scope="used")
    train_text = "".join(text for t in demonstrations(spec, "train", per_task=4)[0] for text, _ in t.turns)
    unseen = []
    for transcript in demonstrations(spec, "test", per_task=2)[0]:
        shown = ""  # what the model has read before each action, rendered as in an episode
        for message in transcript_messages(transcript, system, tokenizer):
            if message["role"] == "assistant":
                ids = IDS.findall(message["content"])
                unseen += [
                    f"{transcript.instruction}: {i}" for i in ids if i not in shown and i not in train_text
                ]
            shown += message["content"]
    assert unseen == []
