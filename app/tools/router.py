"""The tools, served: each utility of this package is one `expose` line.

Signed-in only (the caller is required by every route); a parameter typed `User` receives the
caller, `AsyncSession`, `httpx.AsyncClient` and `Settings` parameters receive the app's own,
and everything else is read from the JSON body. See app/expose/.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.expose import Caller, Exposer
from app.jobs.schemas import JobRead
from app.tools.cards import card_check_digit, check_card, check_card_number
from app.tools.currency import RatesUnavailable, convert_currency
from app.tools.loans import amortisation_schedule
from app.tools.statement import account_statement, check_period
from app.users import service as users_service
from app.users.dependencies import get_current_user
from app.users.models import User


async def _active_user(session: AsyncSession, user_id: int) -> User | None:
    # A long-running tool's job runs as the user who started it, if they still may.
    user = await users_service.get_user(session, user_id)
    return user if user.is_active else None


def _user_id(user: User) -> int:
    return user.id


CALLER = Caller(User, get_current_user, user_id=_user_id, load=_active_user)


def make_exposer(prefix: str = "/tools", kind_prefix: str = "tools") -> Exposer:
    """An empty tool router that authenticates like the rest of the API (also used by
    `python -m app expose`, and by tests that expose functions of their own)."""
    return Exposer(prefix=prefix, caller=CALLER, job_schema=JobRead, kind_prefix=kind_prefix)


tools = make_exposer()
tools.expose(amortisation_schedule)
tools.expose(convert_currency, errors={RatesUnavailable: (503, "rates_unavailable")})
tools.expose(check_card)
tools.expose(check_card_number)
tools.expose(card_check_digit)
tools.expose(account_statement, long_running=True, check=check_period)

router = tools.router
