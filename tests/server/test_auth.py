"""Every route is behind Jupyter's auth: no credentials or a wrong token gets 403."""

from __future__ import annotations

import pytest

from tests.server.helpers import error_of

ROUTES = [("GET", "models"), ("POST", "analyze"), ("GET", "health"), ("GET", "no-such-route"), ("POST", "no-such-route")]


@pytest.mark.parametrize("method,route", ROUTES)
@pytest.mark.parametrize("authorization", ["", "token wrong-token", "Bearer nope"])
async def test_refused_without_valid_token(jp_fetch, method: str, route: str, authorization: str) -> None:
    # jp_fetch only adds the real token when no Authorization header is given
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    body = b'{"text": "x"}' if method == "POST" else None
    status, error, response = await error_of(jp_fetch("lenscope", "api", route, method=method, headers=headers, body=body))
    assert status == 403, (route, status, error)
    assert b"Traceback" not in response.body


async def test_valid_token_is_accepted(jp_fetch) -> None:
    response = await jp_fetch("lenscope", "api", "health")
    assert response.code == 200
