"""The application factory. Building an app opens nothing; its lifespan does."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

# Registers every job kind. Not `import app.job_kinds`: that binds `app`, hiding the lazy app.
from app import job_kinds as _job_kinds  # noqa: F401
from app.auth.router import router as auth_router
from app.core.admission import DatabaseAdmission
from app.core.body_limit import BodyLimitMiddleware, large_body_paths
from app.core.error_handlers import UnhandledErrorMiddleware, install_error_handlers
from app.core.observability import AccessLogMiddleware, Metrics
from app.core.request_id import RequestIdMiddleware
from app.core.settings import Settings, get_settings
from app.exports.router import router as exports_router
from app.files.router import router as files_router
from app.files.service import delete_owner_files
from app.health.root import router as root_router
from app.health.router import router as health_router
from app.imports.router import router as imports_router
from app.jobs.router import router as jobs_router
from app.jobs.runner import run_jobs
from app.lifespan import make_lifespan
from app.notifications.router import router as notifications_router
from app.tools.router import router as tools_router
from app.users.router import router as users_router
from app.users.startup import create_first_superuser
from app.wallet.router import router as wallet_router

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, served: bool = False) -> FastAPI:
    """The app. `served`: this process exists to serve it (`app.main:app`, what uvicorn and
    `python -m app serve` load), so its start-up objects are frozen out of the garbage
    collector's scans after start-up; an app built in-process (tests, scripts) is not."""
    settings = settings or get_settings()
    app = FastAPIOffline(
        title="fastapi-production-patterns",
        version="1.0.0",
        summary="A wallet service that carries every pattern of the skill.",
        lifespan=make_lifespan(
            startup_hooks=[create_first_superuser],
            services=[run_jobs],
            freeze_after_startup=served,
        ),
        debug=False,  # a debug 500 is an HTML traceback that bypasses our handlers
        # We export Prometheus metrics ourselves; FastAPI's built-in OpenTelemetry hooks cost
        # about 10 % per request even with no provider configured.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.metrics = Metrics(settings.prometheus_multiproc_dir)
    # What DELETE /users/{id} erases besides the account (users imports no domain above it).
    app.state.account_data_erasers = (delete_owner_files,)

    domains = [
        auth_router,
        users_router,
        jobs_router,
        notifications_router,
        exports_router,
        wallet_router,
        files_router,
        imports_router,
        tools_router,
    ]
    api = APIRouter(prefix=API_PREFIX)
    for router in domains:
        api.include_router(router)
    app.include_router(api)
    app.include_router(health_router)
    app.include_router(root_router)

    install_error_handlers(app)
    # Innermost: at most DB_ADMISSION_LIMIT API requests use the database at once, a bounded
    # queue waits first come first served, the rest get a quick 503 (app/core/admission.py).
    app.add_middleware(
        DatabaseAdmission,
        limit=settings.effective_db_admission_limit,
        max_waiting=settings.db_admission_queue,
        timeout=settings.db_admission_timeout,
        path_prefix=f"{API_PREFIX}/",
    )
    # Pure-ASGI middlewares, one job each. Added first = innermost, so a request meets them in
    # the reverse order: CORS, request id, access log and metrics, the 500 catch-all (inside
    # the first two, so a 500 carries their headers), the body limit, then admission.
    app.add_middleware(
        BodyLimitMiddleware,
        max_json_bytes=settings.max_json_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        body_read_timeout=settings.body_read_timeout,
        large_body_paths=large_body_paths(domains, prefix=API_PREFIX),
    )
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(AccessLogMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    # Added last = outermost, so preflights are answered before anything asks for a token.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=bool(settings.cors_origins),
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After", "Idempotent-Replayed"],
        max_age=600,
    )
    if settings.forwarded_allow_ips:
        # Outermost: everything inside (rate limits, logs) sees the client a trusted proxy
        # forwarded; from any other peer the headers are ignored.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` asks for this attribute. Building it on first access, not at
    # import, keeps `import app.main` free of side effects (tests import the factory only).
    if name == "app":
        application = create_app(served=True)
        globals()["app"] = application
        return application
    raise AttributeError(name)
