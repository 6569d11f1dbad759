"""Harness for the Python conformance suite: the second, independent client.

The official Python `realtime` client (2.34.1, vsn 1.0.0 JSON frames only) is driven against
the backend; sign-up and table writes go over plain HTTP (httpx), as any program would.

Target selection, as in the JS suite:
- SUPABASE_URL + SUPABASE_ANON_KEY (+ SUPABASE_SERVICE_ROLE_KEY): a real Supabase project
  (email confirmation off; rows persist, so every scenario makes its own users and rooms);
- otherwise `ruwad-server` (RUWAD_SERVER_BIN, default <repo>/target/debug/ruwad-server) is
  started once for the session on 127.0.0.1:0 with a fresh temporary data dir, and stopped
  with SIGTERM (SIGKILL after 10 s) at the end. Its log goes to
  RUWAD_CONFORMANCE_LOG_DIR/python.server.log when that is set, else into the data dir.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates

REPO_ROOT = Path(__file__).resolve().parents[3]
RUN = f"{int(time.time()):x}{secrets.token_hex(3)}"
_counter = itertools.count(1)
EMAIL_DOMAIN = os.environ.get("CONFORMANCE_EMAIL_DOMAIN", "example.com")


def uniq(label: str) -> str:
    """A name unique to this run."""
    return f"{label}-py{RUN}-{next(_counter)}"


@dataclass
class Backend:
    url: str
    anon_key: str
    service_role_key: str | None
    local: bool


@dataclass
class User:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    label: str


# ------------------------------------------------------------------------------------------------
# The target


def _start_local_server() -> tuple[Backend, Callable[[], None]]:
    bin_path = Path(os.environ.get("RUWAD_SERVER_BIN") or REPO_ROOT / "target" / "debug" / "ruwad-server").resolve()
    if not bin_path.exists():
        raise RuntimeError(
            f"ruwad-server not found at {bin_path}: build it (cargo build -p ruwad-server) or set "
            "RUWAD_SERVER_BIN, or point SUPABASE_URL / SUPABASE_ANON_KEY at a real project"
        )
    data_dir = Path(tempfile.mkdtemp(prefix="ruwad-conformance-py-"))
    log_dir = os.environ.get("RUWAD_CONFORMANCE_LOG_DIR")
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        log_path = Path(log_dir) / "python.server.log"
    else:
        log_path = data_dir / "server.log"
    log = open(log_path, "wb")
    env = {"RUST_LOG": "info", **os.environ}
    proc = subprocess.Popen(
        [str(bin_path), "--addr", "127.0.0.1:0", "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
    )

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()
        if os.environ.get("RUWAD_KEEP_DATA") != "1":
            shutil.rmtree(data_dir, ignore_errors=True)

    assert proc.stdout is not None
    line = b""
    deadline = time.monotonic() + 30
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            stop()
            tail = log_path.read_text(errors="replace").splitlines()[-20:] if log_path.exists() else []
            reason = "printed no ready line within 30 s" if proc.returncode is None else f"exited with {proc.returncode}"
            raise RuntimeError(f"ruwad-server {reason}\n--- {log_path} ---\n" + "\n".join(tail))
        ready, _, _ = select.select([proc.stdout], [], [], min(remaining, 0.5))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                continue
            line += chunk
    info = json.loads(line.split(b"\n", 1)[0])
    return Backend(info["url"], info["anon_key"], info["service_role_key"], True), stop


@pytest.fixture(scope="session")
def backend() -> Any:
    if os.environ.get("SUPABASE_URL"):
        anon = os.environ.get("SUPABASE_ANON_KEY")
        if not anon:
            raise RuntimeError("SUPABASE_URL is set but SUPABASE_ANON_KEY is not")
        yield Backend(
            os.environ["SUPABASE_URL"].rstrip("/"),
            anon,
            os.environ.get("SUPABASE_SERVICE_ROLE_KEY"),
            False,
        )
        return
    target, stop = _start_local_server()
    try:
        yield target
    finally:
        stop()


# ------------------------------------------------------------------------------------------------
# Plain HTTP: auth and PostgREST


class Api:
    """Sign-up and PostgREST calls over httpx, the way a non-supabase program makes them."""

    def __init__(self, backend: Backend, http: httpx.AsyncClient) -> None:
        self.backend = backend
        self.http = http

    def _headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {
            "apikey": self.backend.anon_key,
            "Authorization": f"Bearer {token or self.backend.anon_key}",
            **extra,
        }

    async def sign_up(self, label: str, profile: bool = True) -> User:
        email = f"{uniq(label)}@{EMAIL_DOMAIN}".lower()
        password = f"Pw-{secrets.token_urlsafe(9)}!7"
        r = await self.http.post(
            f"{self.backend.url}/auth/v1/signup",
            headers=self._headers(**{"Content-Type": "application/json"}),
            json={"email": email, "password": password},
        )
        assert r.status_code == 200, f"sign-up of {email}: {r.status_code} {r.text}"
        body = r.json()
        assert body.get("access_token"), (
            "sign-up returns a session (on a real project, turn email confirmation off): " + r.text
        )
        user = User(body["user"]["id"], email, password, body["access_token"], body["refresh_token"], label)
        if profile:
            r = await self.http.post(
                f"{self.backend.url}/rest/v1/profiles?on_conflict=id",
                headers=self._headers(
                    user.access_token,
                    **{"Content-Type": "application/json", "Prefer": "resolution=ignore-duplicates"},
                ),
                json={"id": user.id, "display_name": label},
            )
            assert r.status_code in (200, 201), f"profile of {label}: {r.status_code} {r.text}"
        return user

    async def insert(self, user: User | None, table: str, row: dict[str, Any]) -> dict[str, Any]:
        r = await self.http.post(
            f"{self.backend.url}/rest/v1/{table}",
            headers=self._headers(
                user.access_token if user else None,
                **{"Content-Type": "application/json", "Prefer": "return=representation"},
            ),
            json=row,
        )
        assert r.status_code == 201, f"insert into {table}: {r.status_code} {r.text}"
        return r.json()[0]

    async def update(self, user: User, table: str, query: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        r = await self.http.patch(
            f"{self.backend.url}/rest/v1/{table}?{query}",
            headers=self._headers(
                user.access_token, **{"Content-Type": "application/json", "Prefer": "return=representation"}
            ),
            json=values,
        )
        assert r.status_code == 200, f"update {table}: {r.status_code} {r.text}"
        return r.json()

    async def delete_as_service(self, table: str, query: str) -> list[dict[str, Any]]:
        key = self.backend.service_role_key
        assert key, "needs the service-role key"
        r = await self.http.delete(
            f"{self.backend.url}/rest/v1/{table}?{query}",
            headers={"apikey": key, "Authorization": f"Bearer {key}", "Prefer": "return=representation"},
        )
        assert r.status_code == 200, f"delete from {table}: {r.status_code} {r.text}"
        return r.json()

    async def new_room(self, owner: User, members: list[User] = ()) -> dict[str, Any]:
        room = await self.insert(owner, "chat_rooms", {"name": uniq("room"), "kind": "channel", "created_by": owner.id})
        await self.insert(owner, "room_members", {"room_id": room["id"], "user_id": owner.id, "role": "admin"})
        for m in members:
            await self.insert(m, "room_members", {"room_id": room["id"], "user_id": m.id, "role": "member"})
        return room

    async def post(self, user: User, room_id: str, content: str) -> dict[str, Any]:
        return await self.insert(user, "chat_messages", {"room_id": room_id, "user_id": user.id, "content": content})


@pytest.fixture
async def api(backend: Backend) -> Any:
    async with httpx.AsyncClient(timeout=20) as http:
        yield Api(backend, http)


# ------------------------------------------------------------------------------------------------
# Realtime clients and bounded waits


@dataclass
class Realtime:
    backend: Backend
    clients: list[AsyncRealtimeClient] = field(default_factory=list)

    async def client(self, user: User | None = None) -> AsyncRealtimeClient:
        """A client connected with the anon key, authorised as `user` when given (as supabase-py does)."""
        c = AsyncRealtimeClient(f"{self.backend.url}/realtime/v1", token=self.backend.anon_key, max_retries=3)
        self.clients.append(c)
        if user:
            await c.set_auth(user.access_token)
        return c

    async def close(self) -> None:
        for c in self.clients:
            try:
                await asyncio.wait_for(c.remove_all_channels(), 5)
            except Exception:
                await c.close()


@pytest.fixture
async def rt(backend: Backend) -> Any:
    holder = Realtime(backend)
    try:
        yield holder
    finally:
        await holder.close()


def channel_params(*, ack: bool = False, self_: bool = False, key: str = "", presence: bool = False, private: bool = False) -> dict[str, Any]:
    return {
        "config": {
            "broadcast": {"ack": ack, "self": self_},
            "presence": {"key": key, "enabled": presence},
            "private": private,
        }
    }


async def subscribe(channel: Any, timeout: float = 15) -> None:
    """Subscribes and asserts SUBSCRIBED."""
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = []
    await asyncio.wait_for(channel.subscribe(lambda s, e: states.append((s, e))), timeout)
    assert states, f"{channel.topic}: no subscribe status within {timeout} s"
    status, err = states[-1]
    assert status == RealtimeSubscribeStates.SUBSCRIBED, f"{channel.topic}: {status} {err}"


async def refused(channel: Any, timeout: float = 15) -> Exception | None:
    """Subscribes expecting CHANNEL_ERROR; returns its error."""
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = []
    await asyncio.wait_for(channel.subscribe(lambda s, e: states.append((s, e))), timeout)
    assert states, f"{channel.topic}: no subscribe status within {timeout} s"
    status, err = states[-1]
    assert status == RealtimeSubscribeStates.CHANNEL_ERROR, f"{channel.topic} should be refused, got {status}"
    return err


class WaitTimeout(AssertionError):
    """A bounded wait ran out."""


class Inbox:
    """Collects callback arguments; `next` waits (bounded) for the first untaken match."""

    def __init__(self, name: str = "inbox") -> None:
        self.name = name
        self.items: list[Any] = []
        self.taken: set[int] = set()
        self._changed = asyncio.Event()

    def push(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def next(self, pred: Callable[[Any], bool] = lambda _: True, timeout: float = 10, what: str = "an event") -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i, item in enumerate(self.items):
                if i not in self.taken and pred(item):
                    self.taken.add(i)
                    return item
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise WaitTimeout(f"{self.name}: no {what} within {timeout} s (have {self.items!r:.600})")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def quiet(self, seconds: float = 0.5, pred: Callable[[Any], bool] = lambda _: True, why: str = "nothing should arrive") -> None:
        await asyncio.sleep(seconds)
        extra = [x for i, x in enumerate(self.items) if i not in self.taken and pred(x)]
        assert extra == [], f"{self.name}: {why}: {extra!r}"
