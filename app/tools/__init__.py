"""Tools: plain Python utilities, written the ordinary way (no FastAPI in them), served as
endpoints by `app.tools.router` with one `expose` line each (skill pattern 5)."""
