"""Named built-in solvers: reference solutions that need to read before they write (e.g. which
transition leads to a status), which a fixed call list cannot express.

A solver is ``solve(client, args) -> final answer``; ``client`` is a SimClient in the episode's
world, ``args`` the task's rendered ``solution.args``. Register one with ``@solver("name")``;
suites name it as ``solution: {solver: name, args: {...}}``.
"""

SOLVERS = {}


class SolverError(RuntimeError):
    pass


def solver(name):
    def register(solve):
        SOLVERS[name] = solve
        return solve

    return register


@solver("transition_issue")
def transition_issue(client, args):
    """Move ``issue`` to the status ``status`` through the transitions its workflow offers
    (several hops if need be), sending ``fields`` (e.g. a resolution) with the last one."""
    key, target = args["issue"], str(args["status"]).casefold()
    path = f"/rest/api/3/issue/{key}/transitions"
    seen = set()
    for _ in range(8):
        offered = client.request("GET", path, params={"expand": "transitions.fields"}).json()["transitions"]
        final = next((t for t in offered if t["to"]["name"].casefold() == target), None)
        step = final or next((t for t in offered if t["to"]["name"] not in seen), None)
        if step is None:
            raise SolverError(f"no way from the offered transitions to status {args['status']!r} for {key}")
        seen.add(step["to"]["name"])
        body = {"transition": {"id": step["id"]}}
        if final is not None and args.get("fields"):
            body["fields"] = args["fields"]
        response = client.request("POST", path, json=body)
        if response.status_code >= 400:
            raise SolverError(f"transition {step['id']} of {key} failed: {response.text}")
        if final is not None:
            return args.get("answer", "done")
    raise SolverError(f"{key} did not reach {args['status']!r} in 8 transitions")


@solver("for_each_issue")
def for_each_issue(client, args):
    """Search ``jql`` (GET /search/jql) and, for every issue found, send ``edit`` (an edit body:
    ``fields`` and/or ``update``) and/or move it to ``status`` as ``transition_issue`` does (with
    ``fields`` on the last transition). Fails when the search finds nothing."""
    found = client.request("GET", "/rest/api/3/search/jql", params={"jql": args["jql"], "maxResults": 100})
    if found.status_code >= 400:
        raise SolverError(f"the search {args['jql']!r} failed: {found.text}")
    ids = [issue["id"] for issue in found.json()["issues"]]
    if not ids:
        raise SolverError(f"the search {args['jql']!r} found no issue")
    for issue_id in ids:
        if args.get("edit"):
            response = client.request("PUT", f"/rest/api/3/issue/{issue_id}", json=args["edit"])
            if response.status_code >= 400:
                raise SolverError(f"editing issue {issue_id} failed: {response.text}")
        if args.get("status"):
            transition_issue(
                client, {"issue": issue_id, "status": args["status"], "fields": args.get("fields")}
            )
    return args.get("answer", "done")
