from trainer.prompts import (
    Observation,
    build_messages,
    encode_prompt,
    endpoint_docs,
    render_observation,
    schema_skeleton,
    system_prompt,
)

OPENAPI = {
    "openapi": "3.0.0",
    "paths": {
        "/rest/api/3/issue": {
            "post": {
                "summary": "Create issue",
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IssueCreate"}}}
                },
            }
        },
        "/rest/api/3/issue/{issueIdOrKey}": {
            "get": {"summary": "Get issue"},
            "delete": {"summary": "Delete issue"},
            "parameters": [{"name": "issueIdOrKey", "in": "path"}],
        },
        "/rest/api/3/search/jql": {
            "get": {
                "summary": "Search issues",
                "parameters": [
                    {"name": "jql", "in": "query"},
                    {"name": "maxResults", "in": "query"},
                    {"name": "X-Trace", "in": "header"},
                ],
            }
        },
    },
    "components": {
        "schemas": {
            "IssueCreate": {
                "type": "object",
                "required": ["fields"],
                "properties": {
                    "update": {"type": "object"},
                    "fields": {
                        "type": "object",
                        "required": ["summary"],
                        "properties": {
                            "labels": {"type": "array", "items": {"type": "string"}},
                            "summary": {"type": "string"},
                            "priority": {"type": "object", "properties": {"name": {"enum": ["High", "Low"]}}},
                        },
                    },
                },
            }
        }
    },
}


def test_endpoint_docs_render_one_line_per_operation():
    lines = endpoint_docs(OPENAPI).splitlines()
    assert lines == [
        'POST /rest/api/3/issue - Create issue; body {"fields":{"summary":"string","labels":["string"],'
        '"priority":{"name":"High|Low"}},"update":"object"}',
        "GET /rest/api/3/issue/{issueIdOrKey} - Get issue",
        "DELETE /rest/api/3/issue/{issueIdOrKey} - Delete issue",
        "GET /rest/api/3/search/jql?jql&maxResults - Search issues",
    ]


def test_endpoint_docs_keep_only_the_endpoints_a_suite_uses():
    docs = endpoint_docs(
        OPENAPI, only=[("get", "/rest/api/3/issue/{issueIdOrKey}"), ("POST", "/rest/api/3/issue")]
    )
    assert [line.split(" - ")[0] for line in docs.splitlines()] == [
        "POST /rest/api/3/issue",
        "GET /rest/api/3/issue/{issueIdOrKey}",
    ]


def test_a_request_example_wins_over_the_schema():
    schema = {
        "type": "object",
        "example": {"transition": {"id": "31"}},
        "properties": {"x": {"type": "string"}},
    }
    assert schema_skeleton(schema) == {"transition": {"id": "31"}}


def test_the_system_prompt_lists_the_endpoints_after_the_rules():
    prompt = system_prompt("GET /x - X")
    assert prompt.endswith("Endpoints:\nGET /x - X")
    assert '{"final": "..."}' in prompt


def test_an_observation_shows_status_and_compact_json(tokenizer):
    text = render_observation(Observation(200, {"key": "OPS-1", "fields": {"labels": ["a"]}}), tokenizer)
    assert text == 'Status 200\n{"key":"OPS-1","fields":{"labels":["a"]}}'


def test_an_observation_leaves_out_links_avatars_and_expand_hints(tokenizer):
    url = "http://127.0.0.1:8000/sim/acme-0123456789/rest/api/3"
    body = {
        "expand": "renderedFields,names",
        "self": f"{url}/issue/10001",
        "key": "OPS-1",
        "fields": {
            "assignee": {
                "self": f"{url}/user?accountId=a1",
                "accountId": "a1",
                "avatarUrls": {"48x48": f"{url}/avatar/48"},
                "displayName": "Ada Lovelace",
            },
            "status": {"self": f"{url}/status/1", "iconUrl": f"{url}/icon.png", "name": "Done"},
        },
    }
    text = render_observation(Observation(200, body), tokenizer)
    assert text == (
        'Status 200\n{"key":"OPS-1","fields":{"assignee":{"accountId":"a1","displayName":"Ada Lovelace"},'
        '"status":{"name":"Done"}}}'
    )


def test_a_confluence_list_keeps_the_cursor_of_its_next_page(tokenizer):
    body = {
        "results": [{"id": "1", "title": "Home", "_links": {"webui": "/spaces/ENG/pages/1"}}],
        "_links": {"next": "/wiki/api/v2/pages?cursor=abc", "base": "http://127.0.0.1:8000/sim/w/wiki"},
    }
    text = render_observation(Observation(200, body), tokenizer)
    assert text.split("\n", 1)[1] == (
        '{"results":[{"id":"1","title":"Home"}],"_links":{"next":"/wiki/api/v2/pages?cursor=abc"}}'
    )


def test_a_transition_list_fits_the_default_budget_whole(tokenizer):
    """Three transitions with their target statuses, as the simulator answers them: before links
    were left out, the third was past the cut and the model could not see its id."""
    url = "http://127.0.0.1:8000/sim/acme-0123456789/rest/api/3"
    transitions = [
        {
            "id": str(11 + 10 * i),
            "name": name,
            "to": {
                "self": f"{url}/status/1000{i}",
                "description": "",
                "iconUrl": f"{url}/images/icons/statuses/generic.png",
                "name": name,
                "id": f"1000{i}",
                "statusCategory": {"self": f"{url}/statuscategory/{i}", "id": i, "key": "new", "name": name},
            },
            "hasScreen": False,
            "isGlobal": True,
            "fields": {},
        }
        for i, name in enumerate(["To Do", "In Progress", "Done"])
    ]
    text = render_observation(
        Observation(200, {"expand": "transitions", "transitions": transitions}), tokenizer
    )
    assert "truncated" not in text and '{"id":"31","name":"Done"' in text


def test_a_format_error_observation_shows_the_message(tokenizer):
    assert (
        render_observation(Observation(None, "No JSON object found."), tokenizer)
        == "Error\nNo JSON object found."
    )


def test_a_long_body_is_cut_to_the_token_budget(tokenizer):
    body = {"issues": [{"key": f"OPS-{i}", "summary": "A fairly long summary text"} for i in range(100)]}
    text = render_observation(Observation(200, body), tokenizer, max_tokens=40)
    head, rest = text.split("\n", 1)
    assert head == "Status 200"
    shown = rest.split("...[truncated, ")[0]
    assert len(tokenizer.encode(shown, add_special_tokens=False)) <= 41
    assert rest.endswith(" more tokens]") and shown.startswith('{"issues":[{"key":"OPS-0"')


def test_turns_alternate_assistant_actions_and_user_observations(tokenizer):
    messages = build_messages("sys", "Do it.", [('{"method": "GET", "path": "/x"}', "Status 404")])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    ids = encode_prompt(tokenizer, messages)
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nsys<|im_end|>")
    assert text.endswith(
        '<|im_start|>assistant\n{"method": "GET", "path": "/x"}<|im_end|>\n'
        "<|im_start|>user\nStatus 404<|im_end|>\n<|im_start|>assistant\n"
    )
