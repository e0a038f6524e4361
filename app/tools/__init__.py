"""Tools: plain Python utilities, written the ordinary way (no FastAPI in them), served as
endpoints by `app.tools.router` with one `expose` line each (docs/patterns/05-expose.md)."""
