"""Variants: deterministic draws, held-out values and families, entity pools, late binding."""

from pathlib import Path

import pytest

from experiments.suites import load_suite, variants
from experiments.variants import VariantError
from tests.experiments.worlds import build_world

EXAMPLE = load_suite((Path(__file__).parent / "suites" / "example.yaml").read_text())
TRANSITION, CREATE_PAGE, READ_PRIORITY = EXAMPLE.tasks


def pooled(text):
    return load_suite(f"""
suite: s
tasks:
  - id: t
    scenario: sc
    seed: acme
    variants: {{train: 40, test: 12}}
{text}
    instruction: Give {{{{ who }}}} {{{{ points }}}} points.
    trace: [{{max_calls: 3}}]
""").tasks[0]


def test_the_same_task_and_split_always_draw_the_same_variants():
    first = [v.to_dict() for v in variants(TRANSITION, "train")]
    again = [v.to_dict() for v in variants(load_suite(example_text()).tasks[0], "train")]
    assert first == again
    assert len(first) == 6 and len(variants(TRANSITION, "test")) == 3
    assert [v.index for v in variants(TRANSITION, "train")] == list(range(6))


def example_text():  # read afresh, to prove nothing is cached
    return (Path(__file__).parent / "suites" / "example.yaml").read_text()


def test_train_and_test_variants_differ():
    train = {tuple(sorted(v.values.items())) for v in variants(TRANSITION, "train")}
    test = {tuple(sorted(v.values.items())) for v in variants(TRANSITION, "test")}
    assert not train & test


def test_held_out_vars_never_share_a_value_between_train_and_test():
    task = pooled("""    vars:
      who: [ada, bob, cy, dee, eve, fay, gus, hal]
      points: [1, 2, 3, 5, 8]
    split: {holdout: [who], test_fraction: 0.25}""")
    train_who = {v.values["who"] for v in variants(task, "train")}
    test_who = {v.values["who"] for v in variants(task, "test")}
    assert len(test_who) == 2 and len(train_who) == 6
    assert not train_who & test_who
    # points is not held out: test variants may reuse its train values
    assert {v.values["points"] for v in variants(task, "test")} & {
        v.values["points"] for v in variants(task, "train")
    }


def test_every_var_is_held_out_when_the_split_names_none():
    task = pooled("""    vars:
      who: [ada, bob, cy, dee]
      points: [1, 2, 3, 5]""")
    for name in ("who", "points"):
        train = {v.values[name] for v in variants(task, "train")}
        test = {v.values[name] for v in variants(task, "test")}
        assert train and test and not train & test


def test_variants_render_the_instruction_and_checks_leaving_setup_results_for_later():
    (first, *_) = variants(TRANSITION, "test")
    values = first.values
    assert first.instruction.startswith(
        f'Move {{{{ issue.key }}}} ("{values["summary"]}") to {values["status"]}'
    )
    assert first.expect[0]["params"]["fields"] == {"status": values["status"], "assignee": values["assignee"]}
    assert first.setup[0]["body"]["fields"]["summary"] == values["summary"]
    assert first.late == ["issue", "transitions"]
    bound = first.bind({"issue": {"key": "OPS-77", "id": "10100"}})
    assert bound.instruction.startswith("Move OPS-77")
    assert bound.expect[0]["params"]["issue"] == "OPS-77"
    assert bound.trace[0]["params"]["call"] == "POST /rest/api/3/issue/OPS-77/transitions"
    assert bound.solution[1]["path"] == "/rest/api/3/issue/OPS-77/assignee"
    assert bound.late == ["transitions"]


def test_a_held_out_family_has_no_train_variants_and_all_its_values_in_test():
    assert variants(CREATE_PAGE, "train") == []
    titles = {v.values["title"] for v in variants(CREATE_PAGE, "test")}
    assert titles == {"Release notes 1.0", "Release notes 1.1", "Release notes 2.0"}


def test_a_variant_survives_a_round_trip_through_json():
    from experiments.variants import Variant

    (first, *_) = variants(TRANSITION, "train")
    assert Variant.from_dict(first.to_dict()) == first


@pytest.mark.django_db
def test_entity_pools_draw_from_the_seed_world():
    w = build_world(seed="acme", template=True)
    train = variants(READ_PRIORITY, "train")
    test = variants(READ_PRIORITY, "test")
    keys = {v.values["issue"]["key"] for v in train} | {v.values["issue"]["key"] for v in test}
    assert keys == {"OPS-1", "OPS-2", "OPS-3"}
    assert not {v.values["issue"]["key"] for v in train} & {v.values["issue"]["key"] for v in test}
    one = next(v for v in train + test if v.values["issue"]["key"] == "OPS-1")
    assert one.instruction == "What is the priority of OPS-1? Answer with its name."
    assert one.expect[0]["params"] == {"equals": "High"}
    assert variants(READ_PRIORITY, "train", world=w.world) == train


@pytest.mark.django_db
def test_entity_pools_need_their_seed_world_loaded():
    with pytest.raises(VariantError, match="from the seed world 'acme', which is not loaded"):
        variants(READ_PRIORITY, "train")
