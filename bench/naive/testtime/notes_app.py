"""A small notes API on SQLAlchemy async: what the test suites under test exercise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(2000), default="")


class NoteIn(BaseModel):
    title: str
    body: str = ""


class NoteOut(NoteIn):
    id: int


async def get_session() -> AsyncIterator[AsyncSession]:  # overridden by the tests
    raise RuntimeError("no database configured")


Session = Annotated[AsyncSession, Depends(get_session)]
app = FastAPI()


@app.post("/notes", response_model=NoteOut, status_code=201)
async def create(note: NoteIn, session: Session) -> Note:
    row = Note(title=note.title, body=note.body)
    session.add(row)
    await session.commit()
    return row


@app.get("/notes", response_model=list[NoteOut])
async def list_notes(session: Session) -> list[Note]:
    return list((await session.scalars(select(Note).order_by(Note.id))).all())


@app.get("/notes/{note_id}", response_model=NoteOut)
async def read(note_id: int, session: Session) -> Note:
    row = await session.get(Note, note_id)
    if row is None:
        raise HTTPException(404)
    return row


@app.delete("/notes/{note_id}", status_code=204)
async def delete(note_id: int, session: Session) -> None:
    row = await session.get(Note, note_id)
    if row is None:
        raise HTTPException(404)
    await session.delete(row)
    await session.commit()
