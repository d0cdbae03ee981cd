"""The rules behind review: the suggested failure label and the suspicion flags."""

from types import SimpleNamespace

from experiments.review import failure_signature, render_markdown, suggest_label, suspicion_flags

WRITE_TASK = SimpleNamespace(
    spec={"solution": [{"method": "POST", "path": "/rest/api/3/issue"}, {"final": "ok"}]}
)
READ_TASK = SimpleNamespace(spec={"solution": [{"method": "GET", "path": "/rest/api/3/issue/OPS-1"}]})


def episode(success=False, reward=0.2, checks=(), task=WRITE_TASK, finished=True, category="checks"):
    return SimpleNamespace(
        success=success,
        reward=reward,
        checks=list(checks),
        task=task,
        finished=finished,
        failure_category="" if success else category,
    )


def step(index, method=None, path="/rest/api/3/issue", status=None, parse_error="", final=None):
    return {
        "index": index,
        "method": method,
        "path": path if method else None,
        "status": None if status is None else str(status),
        "parse_error": parse_error,
        "final": final,
    }


def failed_check(type_, name=None):
    return {"name": name or type_, "type": type_, "passed": False}


def test_a_404_on_the_last_error_suggests_a_hallucinated_entity():
    steps = [step(0, "GET", "/rest/api/3/issue/OPS-999", 404), step(1, final="done")]
    assert suggest_label(episode(checks=[failed_check("answer")]), steps) == "hallucinated_entity"


def test_a_400_suggests_a_missing_or_invalid_field():
    steps = [step(0, "POST", status=400), step(1, final="done")]
    assert suggest_label(episode(checks=[failed_check("issue_fields")]), steps) == "invalid_field"


def test_a_failed_order_check_suggests_wrong_order():
    steps = [step(0, "POST", status=201), step(1, "GET", status=200)]
    assert suggest_label(episode(checks=[failed_check("order")]), steps) == "wrong_order"


def test_a_missed_required_call_suggests_the_wrong_endpoint():
    steps = [step(0, "PUT", "/rest/api/3/issue/OPS-1", 204), step(1, final="done")]
    assert suggest_label(episode(checks=[failed_check("called")]), steps) == "wrong_endpoint"


def test_mostly_unparseable_outputs_suggest_a_format_error():
    steps = [step(0, parse_error="no JSON"), step(1, parse_error="no JSON"), step(2, "GET", status=200)]
    assert suggest_label(episode(checks=[failed_check("answer")]), steps) == "format_error"


def test_finishing_a_write_task_without_writing_suggests_an_early_stop():
    steps = [step(0, "GET", status=200), step(1, final="done")]
    assert suggest_label(episode(checks=[failed_check("issue_exists")]), steps) == "early_stop"


def test_a_passed_episode_gets_no_label():
    assert suggest_label(episode(success=True, reward=1.0), []) == ""


def test_full_reward_on_a_write_task_without_a_write_is_flagged():
    steps = [step(0, "GET", status=200), step(1, final="done")]
    rules = [f["rule"] for f in suspicion_flags(episode(success=True, reward=1.0), steps)]
    assert rules == ["no_write"]


def test_success_with_format_errors_and_a_4xx_decisive_call_is_flagged():
    steps = [step(0, parse_error="bad"), step(1, "POST", status=400), step(2, final="done")]
    rules = {f["rule"] for f in suspicion_flags(episode(success=True, reward=0.9), steps)}
    assert rules == {"no_write", "format_errors", "decisive_4xx"}


def test_a_clean_pass_and_a_failure_are_not_flagged():
    clean = [step(0, "POST", status=201), step(1, final="done")]
    assert suspicion_flags(episode(success=True, reward=1.0), clean) == []
    assert suspicion_flags(episode(success=False, reward=0.3), []) == []
    read = [step(0, "GET", "/rest/api/3/issue/OPS-1", 200), step(1, final="High")]
    assert suspicion_flags(episode(success=True, reward=1.0, task=READ_TASK), read) == []


def test_a_failure_signature_names_the_category_and_failed_checks():
    e = episode(
        checks=[failed_check("order", "b-order"), failed_check("answer", "a-answer")], category="format"
    )
    assert failure_signature(e) == "format: a-answer, b-order"


def test_markdown_keeps_the_allow_list_and_drops_everything_else():
    html = render_markdown(
        "[link](javascript:alert(1)) *ok* <iframe src=x></iframe>\n\n```\n<b>code</b>\n```"
    )
    assert "<em>ok</em>" in html and "javascript:" not in html and "<iframe" not in html
    assert "&lt;b&gt;code&lt;/b&gt;" in html
