async def test_x(app):
    print(type(app), hasattr(app, "state"))
    assert hasattr(app, "state")
