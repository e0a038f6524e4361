"""Audit cases of FPP2xx, blocking the event loop: see __init__.py."""

FLAGGED: dict[str, list[str]] = {
    "FPP201": [
        """
import requests as rq
import httpx

async def get_user_endpoint(user_id: int):
    response = rq.get(f"https://api.example.com/user/{user_id}")  # <- FPP201
    with httpx.Client() as client:  # <- FPP201
        return client.get("/x")
""",
    ],
    "FPP202": [
        """
from time import sleep as pause
import time

async def handler():
    time.sleep(1)  # <- FPP202
    pause(0.5)  # <- FPP202
""",
    ],
    "FPP203": [
        """
from pathlib import Path

async def read_config():
    with open("config.json") as f:  # <- FPP203
        data = f.read()
    return data + Path("extra.txt").read_text()  # <- FPP203
""",
    ],
    "FPP204": [
        """
import redis

cache = redis.Redis.from_url("redis://localhost")

async def get_item(key: str):
    client = redis.Redis(host="localhost")  # <- FPP204
    return cache.get(key) or client.get(key)  # <- FPP204
""",
    ],
    "FPP205": [
        """
from typing import Annotated
from fastapi import Depends
from sqlalchemy.orm import Session, sessionmaker

SessionLocal = sessionmaker(bind=engine)
SessionDep = Annotated[Session, Depends(get_db)]

@router.get("/items")
async def list_items(db: Session = Depends(get_db)):  # <- FPP205
    return db.query(Item).all()

@router.get("/users")
async def list_users(session: SessionDep):  # <- FPP205
    with SessionLocal() as other:  # <- FPP205
        return other.query(User).all()
""",
    ],
    "FPP206": [
        """
import pandas as pd
from fastapi import UploadFile

@app.post("/upload-csv")
async def upload_csv(file: UploadFile):
    df = pd.read_csv(file.file)  # <- FPP206
    head = file.file.read(10)  # <- FPP206
    for line in file.file:  # <- FPP206
        pass
    return {"rows": len(df)}
""",
    ],
    "FPP207": [
        """
from typing import Annotated
from fastapi import File, UploadFile

@app.post("/upload/")
async def upload_file(file: UploadFile = File(...)):
    contents = await file.read()  # <- FPP207
    return {"filename": file.filename, "size": len(contents)}

@app.post("/avatar")
async def avatar(image: Annotated[UploadFile, File()]):
    return len(await image.read())  # <- FPP207
""",
    ],
    "FPP208": [
        """
import asyncio

async def run():
    proc = await asyncio.create_subprocess("ls", "-l")  # <- FPP208
""",
    ],
    "FPP209": [
        """
import asyncio

async def get_user_endpoint(user_id: int):
    loop = asyncio.get_event_loop()
    await loop.run_in_executor(None, get_user_data, user_id)  # <- FPP209
    return await run_in_executor(None, get_user_data, user_id)  # <- FPP209
""",
    ],
    "FPP210": [
        """
import smtplib
from fastapi import BackgroundTasks

def send_email(email: str, message: str):
    with smtplib.SMTP("localhost") as smtp:
        smtp.sendmail("app@example.com", [email], message)

@app.post("/send-notification/")
async def send_notification(email: str, background_tasks: BackgroundTasks):
    background_tasks.add_task(send_email, email, "notification")  # <- FPP210
""",
    ],
}

QUIET: dict[str, list[str]] = {
    "FPP201": [
        """
import requests

def fetch(url):
    return requests.get(url)

async def handler(client, url):
    def in_thread():
        return requests.get(url)
    try:
        return await client.get(url)
    except requests.exceptions.HTTPError:
        raise
""",
    ],
    "FPP202": [
        """
import asyncio
import time

def backoff():
    time.sleep(1)

async def handler():
    await asyncio.sleep(1)
    sleep(1)  # a local name, not time.sleep
""",
    ],
    "FPP203": [
        """
import anyio
from aiofiles import open as aopen

def load(path):
    with open(path) as f:
        return f.read()

async def handler(path):
    async with aopen(path) as f:
        data = await f.read()
    return data + await anyio.Path(path).read_text()
""",
        """
from aiofiles import open

async def handler(path):
    async with open(path) as f:
        return await f.read()
""",
    ],
    "FPP204": [
        """
import redis
from redis.asyncio import Redis
from redis import asyncio as aioredis

cache = Redis.from_url("redis://localhost")

def sync_job():
    return redis.Redis().get("k")

async def handler(key):
    client = aioredis.Redis()
    return await cache.get(key) or await client.get(key)
""",
    ],
    "FPP205": [
        """
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

@router.get("/items")
def list_items(db: Session = Depends(get_db)):
    return db.query(Item).all()

@router.get("/users")
async def list_users(db: AsyncSession = Depends(get_db)):
    return (await db.scalars(select(User))).all()
""",
    ],
    "FPP206": [
        """
import pandas as pd
from fastapi import UploadFile

@app.post("/upload-csv")
def upload_csv(file: UploadFile):
    return len(pd.read_csv(file.file))

@app.post("/upload")
async def upload(file: UploadFile):
    chunk = await file.read(65536)
    position = file.file.tell()
    return {"name": file.filename, "type": file.content_type}
""",
    ],
    "FPP207": [
        """
from fastapi import UploadFile

@app.post("/upload")
async def upload(file: UploadFile, request: Request):
    while chunk := await file.read(1024 * 1024):
        pass
    body = await request.body()
    async with aiofiles.open("x") as f:
        return await f.read()
""",
    ],
    "FPP208": [
        """
import asyncio

async def run():
    proc = await asyncio.create_subprocess_exec("ls", "-l")
    await proc.communicate()
""",
    ],
    "FPP209": [
        """
import asyncio

async def handler(pool):
    await asyncio.to_thread(work)
    return await asyncio.get_running_loop().run_in_executor(pool, work)

async def copy_file(path):
    run_in_executor = asyncio.get_running_loop().run_in_executor
    return await run_in_executor(pool, open, path)

async def log_in_thread(event):
    ctx = contextvars.copy_context()
    await asyncio.get_running_loop().run_in_executor(None, lambda: ctx.run(write, event))
""",
    ],
    "FPP210": [
        """
import aiosmtplib
import logging

async def send_email(email: str):
    await aiosmtplib.send(message, hostname="localhost")

def write_audit_log(email: str):
    logging.getLogger("audit").info("sent to %s", email)

@app.post("/send")
async def send(email: str, background_tasks: BackgroundTasks):
    background_tasks.add_task(send_email, email)
    background_tasks.add_task(write_audit_log, email)
""",
    ],
}
