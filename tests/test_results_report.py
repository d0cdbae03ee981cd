"""bench/results.py turns `manage.py train` reports into docs/results.md: every figure comes from a
report, and a configuration without a report is left out rather than invented."""

import argparse
import importlib.util
import os
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("results", Path(__file__).parents[1] / "bench" / "results.py")
results = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(results)


def report(algo, before, after, rewards):
    evaluation = lambda r: {"reward": r, "success": r / 2, "per_task": {"create-issue": {"reward": r}}}  # noqa: E731
    return {
        "config": {
            "suite": "atlassian-core",
            "model": "smollm2-135m",
            "algo": algo,
            "time_budget": 60.0,
            "torch_threads": 2,
        },
        "iterations": [
            (
                # stopped by the budget halfway through its second epoch, 900 tokens trained in 20 s
                {"phase": "sft", "epoch": 1.5, "tokens": 900, "seconds": 20.0}
                if algo.startswith("sft") and i == 0
                else {"phase": "grpo"}
            )
            | {"iteration": i + 1, "reward_mean": r, "elapsed": 10.0 * (i + 1)}
            for i, r in enumerate(rewards)
        ],
        "eval": {"before": evaluation(before), "after": evaluation(after)},
    }


@pytest.fixture
def reports(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(results, "FIGURES", tmp_path / "figures")
    (tmp_path / "results").mkdir()
    return tmp_path


def write(folder, name, document):
    import json

    (folder / "results" / name).write_text(json.dumps(document))


def test_the_table_shows_each_runs_held_out_reward_and_leaves_out_missing_runs(reports):
    write(reports, "atlassian-core-base.json", report("eval", 0.08, 0.08, []))
    both = report("sft+grpo", 0.08, 0.96, [0.5, 0.9])
    both["eval"]["after_sft"] = {"reward": 0.81, "success": 0.5}
    both["eval"]["before"]["shared_from"] = "atlassian-core-base.json"
    write(reports, "atlassian-core-sft+grpo.json", both)
    grpo = report("grpo", 0.05, 0.12, [0.1])  # evaluated its own start, with a reply prefix
    grpo["config"]["reply_prefix"] = '{"'
    write(reports, "atlassian-core-grpo.json", grpo)
    text = results.render(["atlassian-core", "jira-workflows"])
    assert 'GRPO only: its own starting point (every reply starting with the given `{"`)' in text
    assert "before training: held-out reward 0.050" in text
    assert "--reply-prefix '{\"'" in text
    assert "SFT + GRPO: its own starting point" not in text  # shared the base evaluation
    assert "| prompted base | 0.080 | 0.040 | 0 | 0 | 0 | 2 | - |" in text
    assert "| SFT + GRPO | 0.960 | 0.480 | 20 | 1.5 | 1 | 2 | 45.0 |" in text  # the machine's speed
    assert "SFT + GRPO: after its SFT phase, held-out reward 0.810, success 0.500." in text
    assert "training budget 60 s a run" in text
    assert "| SFT only |" not in text and "Not run in this round: SFT only." in text  # no report, no row
    assert "No runs yet: `python bench/results.py --suite jira-workflows`" in text
    assert "| create-issue | 0.08 | 0.12 | 0.96 |" in text
    # The targets, from the reports: (b) needs both jira-workflows runs, so it is left out.
    assert (
        "- (a) atlassian-core, SFT + GRPO at least 0.95 held-out reward within 30 minutes: "
        "0.960 after 20 s of training (budget 60 s), **met**." in text
    )
    assert "(b)" not in text
    assert (
        "- (c) atlassian-core, GRPO from the prompted base above the base: 0.120 against its own "
        "start 0.050 and the prompted base's 0.080, **met**." in text
    )
    svg = (reports / "figures" / "atlassian-core.svg").read_text()
    assert svg.count("<polyline") == 3 and "SFT + GRPO" in svg


def test_the_margin_target_compares_sft_and_grpo_with_sft_only_on_the_same_suite(reports):
    for config, after in (("sft", 0.45), ("sft+grpo", 0.5), ("grpo", 0.0)):
        document = report(config, 0.0, after, [after])
        document["config"]["suite"] = "jira-workflows"
        write(reports, f"jira-workflows-{config}.json", document)
    text = results.render(["jira-workflows"])
    assert "0.500 against 0.450 (+0.050), **not met**." in text
    assert (
        "GRPO from the prompted base above the base: 0.000 against its own start 0.000, **not met**." in text
    )


def episodes(rewards):
    return [{"key": f"task-{i % 3}/test/{i}", "reward": r} for i, r in enumerate(rewards)]


def test_each_target_says_how_far_its_figure_could_move_with_other_held_out_episodes(reports):
    # A bootstrap over the held-out episodes, paired by episode where two runs are compared: a
    # margin made of one lucky episode must not read like one every episode shows.
    sft, both = report("sft", 0.0, 0.5, [0.5]), report("sft+grpo", 0.0, 0.6, [0.6])
    sft["eval"]["after"]["variants"] = episodes([0.5] * 10)
    both["eval"]["after"]["variants"] = episodes([0.5] * 9 + [1.5])  # one episode makes the margin
    for config, document in (("sft", sft), ("sft+grpo", both)):
        document["config"]["suite"] = "jira-workflows"
        write(reports, f"jira-workflows-{config}.json", document)
    core = report("sft+grpo", 0.0, 0.9, [0.9])
    core["eval"]["after"]["variants"] = episodes([0.9] * 20)  # every episode alike: no spread
    write(reports, "atlassian-core-sft+grpo.json", core)
    text = results.render(["atlassian-core", "jira-workflows"])
    assert "(budget 60 s; 95 % interval over its 20 held-out episodes 0.900 to 0.900), **not met**." in text
    assert (
        "0.600 against 0.500 (+0.100; 95 % interval over its 10 held-out episodes +0.000 to +0.300)" in text
    )
    assert results.render(["atlassian-core", "jira-workflows"]) == text  # seeded: the same text again


def test_a_run_alone_gets_every_core_and_sft_its_share_of_the_budget():
    args = argparse.Namespace(model="smollm2-135m", jobs=1, budget=1800.0, sft_share=0.8, device=None)
    command = results.train_command("atlassian-core", "sft+grpo", args)

    def option(name):
        return command[command.index(name) + 1]

    assert option("--threads") == str(os.cpu_count())
    assert option("--time-budget") == "1800.0" and option("--sft-budget") == "1440"
    args.jobs, args.sft_share = 2, results.SFT_SHARE
    command = results.train_command("jira-workflows", "sft+grpo", args)
    assert option("--threads") == str(max(1, os.cpu_count() // 2)) and option("--sft-budget") == "1080"


def test_the_setup_says_what_each_run_showed_the_model_of_a_response(reports):
    base = report("eval", 0.08, 0.08, [])
    base["config"]["observation_tokens"] = 384
    sft = report("sft", 0.08, 0.9, [0.5])
    sft["config"]["observation_tokens"] = 256
    write(reports, "atlassian-core-base.json", base)
    write(reports, "atlassian-core-sft.json", sft)

    page = results.render(["atlassian-core"])

    assert "SFT only: the response whole, links and avatar URLs included, cut to 256 tokens" in page
    assert (
        "prompted base: the response without links, avatar and icon URLs and expand hints, cut to 384 tokens."
        in page
    )


def test_the_setup_says_where_grpo_sampled_fresh_variants(reports):
    write(reports, "atlassian-core-base.json", report("eval", 0.08, 0.08, []))
    both = report("sft+grpo", 0.08, 0.9, [0.5, 0.9])
    both["config"] |= {"grpo_variants": "fresh", "grpo_variants_used": 228}
    write(reports, "atlassian-core-sft+grpo.json", both)

    page = results.render(["atlassian-core"])

    assert "GRPO sampled fresh train variants" in page and "(SFT + GRPO: 228 variants)" in page
    assert "--grpo-variants fresh" in page  # the run's command line
    assert "--grpo-variants fresh" in " ".join(results.CONFIGS["sft+grpo"])  # what a new run does
