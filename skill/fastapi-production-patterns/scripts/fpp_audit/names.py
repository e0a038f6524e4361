"""The names the rules recognise: factories, clients, model bases, and word lists."""

from __future__ import annotations

import ast

ENGINE_FACTORIES = {
    "sqlalchemy.create_engine",
    "sqlalchemy.engine.create_engine",
    "sqlalchemy.ext.asyncio.create_async_engine",
    "sqlalchemy.ext.asyncio.engine.create_async_engine",
    "sqlmodel.create_engine",
}
ASYNC_CLIENTS = {
    f"redis.asyncio.{name}"
    for name in ("Redis", "from_url", "Redis.from_url", "ConnectionPool", "ConnectionPool.from_url")
} | {"httpx.AsyncClient", "aiohttp.ClientSession", "asyncpg.create_pool"}
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route"}
NOT_ROUTERS = ("unittest", "mock", "pytest", "respx", "responses", "requests_mock")
PYDANTIC_BASES = {
    "pydantic.BaseModel",
    "pydantic.main.BaseModel",
    "pydantic.RootModel",
    "pydantic_settings.BaseSettings",
    "sqlmodel.SQLModel",
}
UPLOAD_FILE = {
    "fastapi.UploadFile",
    "fastapi.datastructures.UploadFile",
    "starlette.datastructures.UploadFile",
}
SYNC_SESSIONS = {"sqlalchemy.orm.Session", "sqlalchemy.orm.session.Session", "sqlmodel.Session"}


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


SYNC_REDIS = {"redis.Redis", "redis.StrictRedis", "redis.from_url", "redis.Redis.from_url"}
V1_CONFIG_KEYS = word_set(
    "orm_mode allow_population_by_field_name schema_extra anystr_strip_whitespace "
    "validate_all max_anystr_length min_anystr_length json_encoders allow_mutation "
    "underscore_attrs_are_private keep_untouched copy_on_model_validation smart_union "
    "validate_assignment arbitrary_types_allowed use_enum_values extra env_file env_prefix "
    "fields alias_generator allow_reuse frozen case_sensitive"
)
MONEY_WORDS = word_set(
    "amount price balance total subtotal cost fee fees salary wage payment charge refund tax "
    "discount revenue income budget payout deposit withdrawal fare tip rent profit credit "
    "debit spend money"
)
NOT_MONEY_WORDS = word_set(
    "count seconds secs sec ms millis time duration ratio rate percent pct percentage weight "
    "size bytes score factor hours minutes days latency share elapsed timeout interval delay "
    "limit tokens token items requests retries attempts steps pages"
)
CLIENT_WORDS = {"engine", "client", "session", "connection", "conn", "redis", "pool", "db"}
ACTING_USER_FIELDS = {"user_id", "sender_id", "from_user_id", "payer_id", "owner_id"}
LIBRARY_TYPES = word_set(
    "fastapi starlette httpx requests aiohttp sqlalchemy redis typing collections datetime "
    "uuid decimal enum pathlib pydantic ipaddress"
)
FILE_READS = {"read", "readline", "readlines", "write", "writelines", "truncate"}
NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
NETWORK_CALLS = ("smtplib.", "requests.", "httpx.", "urllib.request.", "urllib3.", "socket.")
