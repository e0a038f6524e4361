async def test_sign_up_then_read_me(sign_up, login, client):
    user = await sign_up(email="Ann@Example.com", name="Ann")
    headers = await login("ann@example.com")
    response = await client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 200
    assert response.json()["email"] == "ann@example.com" == user["email"]
