"""``suites demos``: each variant's oracle as the chat transcript an SFT run trains on, one JSON
object per line, in the trainer's own prompt format."""

import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from experiments.environment import SimEnvironment, discard_worlds, oracle_transcript
from experiments.suites import save_suite, variants
from experiments.training import load_suite_spec, suite_system_prompt
from trainer.models import load_tokenizer
from trainer.parsing import parse_action
from trainer.prompts import render_observation

SUITES = Path(__file__).parent / "suites"
ORACLE = (SUITES / "jira_oracle.yaml").read_text()

pytestmark = pytest.mark.django_db


@pytest.fixture
def demos(tmp_path):
    """The demonstrations of the first train variant of each jira-oracle task, as written."""
    save_suite(ORACLE)
    out = tmp_path / "demos" / "train.jsonl"
    call_command(
        "suites",
        "demos",
        "--suite",
        "jira-oracle",
        "--sample",
        "1",
        "--out",
        str(out),
        "--model",
        "tiny-random",
    )
    return [json.loads(line) for line in out.read_text().splitlines()]


def same_start(observation, demonstrated, chars=200):
    """Whether two observation texts begin alike once the episodes' world slugs (``acme-<10
    hex>``, in any URL a body still carries) are set aside; past that, a slug's tokens would move
    the token cut."""

    def unslugged(text):
        return re.sub(r"\bacme-[0-9a-f]{10}\b", "W", text)[:chars]

    return unslugged(observation) == unslugged(demonstrated)


def drawn(record):
    spec = load_suite_spec(record["suite"])
    index = int(record["variant"].rsplit("/", 1)[1])
    return variants(spec.task(record["task"]), record["split"], count=index + 1)[index]


def test_it_writes_one_demonstration_per_variant(demos):
    assert [d["variant"] for d in demos] == [
        "transition-new-issue/train/0",
        "create-bug/train/0",
        "read-priority/train/0",
        "assign-missing-issue/train/0",
    ]
    assert all(d.keys() == {"suite", "task", "variant", "split", "messages", "reward"} for d in demos)
    assert {(d["suite"], d["split"], d["reward"]) for d in demos} == {("jira-oracle", "train", 1.0)}


def test_the_chat_is_the_trainer_s_prompt(demos):
    system = suite_system_prompt(load_suite_spec("jira-oracle"))
    for demo in demos:
        messages = demo["messages"]
        assert all(m.keys() == {"role", "content"} for m in messages)
        assert messages[0] == {"role": "system", "content": system}
        assert messages[1]["role"] == "user" and messages[1]["content"].startswith(
            drawn(demo).instruction.split("{{")[0]
        )
        turns = messages[2:]
        assert [m["role"] for m in turns] == ["assistant", "user"] * (len(turns) // 2) + ["assistant"]
        assert all(m["content"].startswith("Status ") for m in turns[1::2])


def test_a_call_list_oracle_s_actions_parse_back_to_its_solution(demos):
    (demo,) = [d for d in demos if d["task"] == "create-bug"]
    actions = [parse_action(m["content"]) for m in demo["messages"][2::2]]

    assert all(a.ok for a in actions)
    solution = drawn(demo).solution
    assert [(a.method, a.path, a.body) for a in actions[:-1]] == [
        (s["method"], s["path"], s.get("body")) for s in solution if "final" not in s
    ]
    assert actions[-1].final == next(s["final"] for s in solution if "final" in s)


def test_every_demonstration_s_actions_parse_back_to_the_oracle_s(demos):
    for demo in demos:
        transcript = oracle_transcript(drawn(demo))
        discard_worlds([transcript.world])
        oracle = [parse_action(text).as_dict() for text, _observation in transcript.turns]
        assert [parse_action(m["content"]).as_dict() for m in demo["messages"][2::2]] == oracle


def test_replaying_each_transcript_through_the_environment_scores_one(demos):
    tokenizer = load_tokenizer("tiny-random")
    for demo in demos:
        env = SimEnvironment(drawn(demo))
        assert env.reset() == demo["messages"][1]["content"]
        messages = demo["messages"][2:]
        try:
            for i, message in enumerate(messages[::2]):
                action = parse_action(message["content"])
                assert action.ok, message["content"]
                observation, done = env.step(action)
                if observation is not None:
                    shown = render_observation(observation, tokenizer)
                    assert same_start(shown, messages[2 * i + 1]["content"])
            result = env.result()
        finally:
            discard_worlds([env.world])
        assert done and (result.reward, result.success) == (1.0, True), demo["variant"]


def test_it_writes_to_stdout_and_takes_the_test_split(capsys):
    save_suite(ORACLE)
    call_command(
        "suites",
        "demos",
        "--suite",
        "jira-oracle",
        "--split",
        "test",
        "--task",
        "read-priority",
        "--model",
        "tiny-random",
    )
    captured = capsys.readouterr()
    (demo,) = [json.loads(line) for line in captured.out.splitlines()]
    assert (demo["variant"], demo["split"]) == ("read-priority/test/0", "test")
    assert "1 demonstration(s) of jira-oracle/test, 0 skipped" in captured.err


def test_it_names_an_unknown_suite_or_task():
    save_suite(ORACLE)
    with pytest.raises(CommandError, match="no suite named 'nope'"):
        call_command("suites", "demos", "--suite", "nope", "--model", "tiny-random")
    with pytest.raises(CommandError, match="has no task nope"):
        call_command("suites", "demos", "--suite", "jira-oracle", "--task", "nope", "--model", "tiny-random")
