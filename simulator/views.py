import base64
import binascii
import json
import secrets

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from simulator.models import User
from simulator.routing import api_of_path, dispatch, error_for

# Exactly this content type: atlassian-python-api reads an error body only when it sees it.
JSON_TYPE = "application/json;charset=UTF-8"


@csrf_exempt
@login_not_required  # the API has its own auth: HTTP Basic with a world user's email + API token
def api(request, world, rest):
    path = "/" + rest
    user = _authenticate(request, world)
    if user is None:
        err = error_for(api_of_path(path), 401, "Client must be authenticated to access this resource.")
        return _http_response(err.status, err.body, {"WWW-Authenticate": 'Basic realm="protected-area"'})

    body, body_error = None, None
    if request.body:
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            body_error = f"Unexpected character in the request body: {exc}"
    params = {key: request.GET.getlist(key) for key in request.GET}
    base_url = request.build_absolute_uri(f"/sim/{world}")
    response = dispatch(
        user.world,
        user,
        request.method,
        path,
        params,
        body,
        "http",
        base_url,
        body_error=body_error,
        lock=True,
    )
    return _http_response(response.status, response.body, response.headers, response.text())


def _authenticate(request, slug):
    """The world's user whose email + API token the Basic header carries, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        email, _, token = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    # The lookup is keyed by the world in the URL, so one world's token never opens another.
    user = (
        User.objects.select_related("world")
        .filter(world__slug=slug, email__iexact=email, active=True)
        .first()
    )
    if user is None or not secrets.compare_digest(user.api_token.encode(), token.encode()):
        return None
    return user


def _http_response(status, body, headers, text=None):
    if body is None:
        response = HttpResponse(status=status)  # truly empty: clients read "" as "no content"
        del response["Content-Type"]
    else:
        text = json.dumps(body) if text is None else text
        response = HttpResponse(text, status=status, content_type=JSON_TYPE)
    for key, value in headers.items():
        response[key] = value
    return response
