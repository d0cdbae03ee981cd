import pytest

from trainer.parsing import parse_action


def test_it_parses_a_call_with_a_body():
    action = parse_action(
        '{"method": "POST", "path": "/rest/api/3/issue", "body": {"fields": {"summary": "x"}}}'
    )
    assert action.ok and not action.is_final
    assert (action.method, action.path, action.body) == (
        "POST",
        "/rest/api/3/issue",
        {"fields": {"summary": "x"}},
    )


def test_it_parses_a_final_answer():
    action = parse_action('{"final": "OPS-1 is Done"}')
    assert action.is_final and action.final == "OPS-1 is Done"
    assert action.as_dict() == {"final": "OPS-1 is Done"}


def test_a_non_string_final_answer_becomes_json_text():
    assert parse_action('{"final": ["OPS-1", "OPS-2"]}').final == '["OPS-1", "OPS-2"]'


def test_it_skips_leading_prose_and_trailing_junk():
    action = parse_action(
        'Sure! Here is the call: {"method": "GET", "path": "/rest/api/3/issue/OPS-1"} hope this helps }}'
    )
    assert action.ok and action.path == "/rest/api/3/issue/OPS-1" and action.body is None


def test_it_reads_json_inside_a_code_fence():
    text = '```json\n{"method": "get", "path": "/wiki/api/v2/pages/12"}\n```'
    action = parse_action(text)
    assert (action.method, action.path) == ("GET", "/wiki/api/v2/pages/12")


def test_it_skips_a_brace_that_does_not_start_json():
    action = parse_action('Use {method} and {path}: {"method": "DELETE", "path": "/rest/api/3/issue/A-1"}')
    assert action.ok and action.method == "DELETE"


def test_it_unwraps_a_native_tool_call():
    action = parse_action(
        '<tool_call>{"name": "http", "arguments": {"method": "GET", "path": "/x"}}</tool_call>'
    )
    assert (action.method, action.path) == ("GET", "/x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("The issue is done.", "No JSON object found"),
        ("", "No JSON object found"),
        ("{'method': 'GET', 'path': '/x'}", "double quotes"),
        ('{"method": "GET", "path": "/x"', "Invalid JSON"),
        ('{"method": "FETCH", "path": "/x"}', '"method" must be one of'),
        ('{"method": "GET", "path": "rest/api/3/issue"}', '"path" must be a string starting with "/"'),
        ('{"method": "GET"}', 'needs "method" and "path"'),
        ('{"summary": "x"}', 'needs "method" and "path"'),
        ('{"final": "x", "method": "GET", "path": "/x"}', "not both"),
        ('{"method": "POST", "path": "/x", "body": "fields"}', '"body" must be a JSON object'),
        ('["GET", "/x"]', "No JSON object found"),
    ],
)
def test_it_explains_what_is_wrong(text, message):
    action = parse_action(text)
    assert not action.ok and not action.is_final
    assert message in action.error
    assert "Reply with exactly one JSON object" in action.error
    assert action.as_dict() == {"error": action.error}
