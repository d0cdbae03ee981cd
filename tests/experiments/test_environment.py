"""SimEnvironment: episodes of suite variants against forked acme worlds, through the trainer's loop."""

import json
from pathlib import Path

import pytest

from experiments.environment import (
    SimEnvironment,
    action_text,
    oracle_transcript,
    tool_docs,
)
from experiments.suites import load_suite, variants
from experiments.training import transcript_messages
from simulator.models import World
from trainer.generation import Generation, GenerationStats, SamplingSettings, TransformersBackend
from trainer.models import LoraSettings, PolicyConfig, load_policy
from trainer.parsing import ParsedAction, parse_action
from trainer.prompts import system_prompt
from trainer.rollout import RolloutSettings, run_episodes
from trainer.sft import encode_demonstration

SUITE = load_suite((Path(__file__).parent / "suites" / "jira_oracle.yaml").read_text())

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme():
    from simulator.seeding import load_seed

    return load_seed("acme")


@pytest.fixture
def read_priority(acme):
    """A read-priority variant: 'What is the priority of WEB-n?'."""
    return variants(SUITE.task("read-priority"), "train", world=acme)[0]


class ScriptedBackend:
    """Replies to every prompt of a batch with the next of the same scripted texts."""

    def __init__(self, tokenizer, texts):
        self.tokenizer, self.texts, self.turn = tokenizer, texts, 0
        self.stats = GenerationStats()

    def generate(self, prompts, settings):
        text = self.texts[self.turn]
        self.turn += 1
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return [Generation(ids, [-0.1] * len(ids), text, "json") for _ in prompts]


def test_a_tiny_random_rollout_runs_in_forked_worlds_and_marks_them(acme, read_priority):
    policy, tokenizer = load_policy(PolicyConfig("tiny-random", LoraSettings(rank=4, alpha=8)))
    system = system_prompt(tool_docs([SUITE.task("read-priority")], scope="used"))
    envs = [SimEnvironment(read_priority) for _ in range(2)]
    settings = RolloutSettings(max_turns=2, sampling=SamplingSettings(max_new_tokens=6, seed=0))

    episodes = run_episodes(TransformersBackend(policy, tokenizer), tokenizer, system, envs, settings)

    for env, episode in zip(envs, episodes, strict=True):
        assert 1 <= len(episode.turns) <= 2
        assert all(len(t.completion_ids) == len(t.logprobs) > 0 for t in episode.turns)
        assert 0.0 <= episode.reward <= 1.0
        world = World.objects.get(pk=env.world.pk)
        assert world.forked_from_id == acme.pk and not world.is_template
        assert world.outcome == ("passed" if episode.success else "failed")
        assert episode.details["world"] == world.slug
        assert episode.details["format_errors"] == sum(not t.action.ok for t in episode.turns)
        assert episode.details["variant"] == read_priority.key
        json.dumps(episode.details)  # stored on the episode as JSON
    assert envs[0].world.pk != envs[1].world.pk


def test_a_format_error_is_answered_and_penalised_and_the_episode_goes_on(read_priority):
    issue = read_priority.values["issue"]
    env = SimEnvironment(read_priority)
    assert issue["key"] in env.reset()

    observation, done = env.step(parse_action("The priority is probably High."))
    assert observation.status is None and observation.body.startswith("No JSON object found")
    assert not done

    observation, done = env.step(parse_action(action_text("GET", f"/rest/api/3/issue/{issue['key']}")))
    assert observation.status == 200 and observation.body["key"] == issue["key"]
    assert not done
    observation, done = env.step(parse_action(json.dumps({"final": issue["priority"]})))
    assert observation is None and done

    result = env.result()
    assert result.success and result.reward == pytest.approx(0.9)  # 1.0 less one format penalty
    assert result.details["format_errors"] == 1 and result.details["calls"] == 1
    assert result.details["breakdown"]["format_errors"] == 1
    assert World.objects.get(pk=env.world.pk).outcome == "passed"


def test_the_turn_limit_ends_an_episode_that_never_answers(read_priority):
    env = SimEnvironment(read_priority, max_turns=2)
    env.reset()
    read = parse_action(action_text("GET", "/rest/api/3/myself"))
    assert env.step(read)[1] is False
    assert env.step(read)[1] is True

    result = env.result()
    assert not result.success and result.details["final_answer"] is None
    assert World.objects.get(pk=env.world.pk).outcome == "failed"


def test_a_query_string_in_the_path_reaches_the_simulator_as_parameters(read_priority):
    env = SimEnvironment(read_priority)
    env.reset()
    key = read_priority.values["issue"]["key"]
    observation, _ = env.step(
        parse_action(action_text("GET", f"/rest/api/3/issue/{key}", {"fields": "priority"}))
    )
    assert observation.status == 200 and set(observation.body["fields"]) == {"priority"}


def test_a_call_with_a_nul_character_gets_an_error_and_the_episode_goes_on(read_priority):
    env = SimEnvironment(read_priority)
    env.reset()
    observation, done = env.step(ParsedAction(method="GET", path="/rest/api/3/myself?expand=\x00"))
    assert (observation.status, done) == (400, False) and observation.body["errorMessages"]
    observation, _ = env.step(parse_action(action_text("GET", "/rest/api/3/myself")))
    assert observation.status == 200


@pytest.mark.parametrize("task_id", [t.id for t in SUITE.tasks])
def test_every_oracle_played_through_the_environment_scores_one(acme, task_id):
    (variant, *_) = variants(SUITE.task(task_id), "train", world=acme)
    transcript = oracle_transcript(variant, template=acme)

    assert transcript.result.reward == 1.0 and transcript.result.success
    assert json.loads(transcript.turns[-1][0]).keys() == {"final"} and transcript.turns[-1][1] is None
    assert all(observation is not None for _text, observation in transcript.turns[:-1])


def test_an_oracle_transcript_replayed_through_the_agent_loop_scores_one(acme):
    from trainer.models import load_tokenizer

    tokenizer = load_tokenizer("tiny-random")
    (variant, *_) = variants(SUITE.task("transition-new-issue"), "train", world=acme)
    transcript = oracle_transcript(variant, template=acme)  # a named solver, played through step()
    backend = ScriptedBackend(tokenizer, [text for text, _ in transcript.turns])

    env = SimEnvironment(variant)
    settings = RolloutSettings(observation_tokens=4096)  # no cut: slugs differ in length between worlds
    (episode,) = run_episodes(backend, tokenizer, "system", [env], settings)

    assert (episode.reward, episode.success, episode.done) == (1.0, True, True)
    assert [t.text for t in episode.turns] == [text for text, _ in transcript.turns]
    messages = transcript_messages(transcript, "system", tokenizer, observation_tokens=4096)
    assert [m["role"] for m in messages] == ["system", "user"] + ["assistant", "user"] * (
        len(transcript.turns) - 1
    ) + ["assistant"]
    # The same observations but for the world in self links.
    demonstrated = [m["content"].replace(transcript.world.slug, "W") for m in messages[3:-1:2]]
    assert demonstrated == [t.observation_text.replace(env.world.slug, "W") for t in episode.turns[:-1]]
    demo = encode_demonstration(tokenizer, messages)
    assert sum(demo.assistant_mask) > 0


def test_tool_docs_cover_the_api_families_the_tasks_use():
    used = tool_docs(SUITE.tasks, scope="used").splitlines()
    families = tool_docs(SUITE.tasks, scope="families").splitlines()

    assert any(line.startswith("POST /rest/api/3/issue - ") for line in used)
    assert any(line.startswith("GET /rest/api/3/issue/{issueIdOrKey}/transitions") for line in used)
    assert set(used) < set(families)
    assert not any("/wiki/" in line or "/rest/agile/" in line for line in families)  # Jira platform only
