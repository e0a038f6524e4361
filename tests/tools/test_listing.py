"""GET /tools: the project's own tools, as a client discovers them."""

from __future__ import annotations

from httpx import AsyncClient

URL = "/api/v1/tools"


async def test_the_tools_are_listed_with_their_schemas(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.get(URL, headers=user_headers)
    assert response.status_code == 200
    tools = {tool["name"]: tool for tool in response.json()["items"]}
    assert set(tools) == {
        "amortisation_schedule",
        "convert_currency",
        "check_card",
        "check_card_number",
        "card_check_digit",
        "account_statement",
    }
    assert all(tool["path"] == f"{URL}/{name}" for name, tool in tools.items())
    assert [name for name, tool in tools.items() if tool["long_running"]] == ["account_statement"]
    # Injected parameters (the caller, the session, the HTTP client, settings) are no inputs.
    assert set(tools["account_statement"]["input_schema"]["properties"]) == {"start", "end"}
    assert set(tools["convert_currency"]["input_schema"]["properties"]) == {
        "amount",
        "source",
        "target",
    }
    assert tools["convert_currency"]["output_schema"]["properties"]["converted"]["type"] == "string"


async def test_signed_in_only_and_unknown_tools(
    client: AsyncClient, user_headers: dict[str, str]
) -> None:
    assert (await client.get(URL)).status_code == 401
    unknown = await client.post(f"{URL}/eval", json={"code": "1"}, headers=user_headers)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    wrong_method = await client.get(f"{URL}/check_card", headers=user_headers)
    assert wrong_method.status_code == 405
