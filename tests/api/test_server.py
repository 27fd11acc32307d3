"""``steme serve``: a real uvicorn on 127.0.0.1, shared with other processes, killed for real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import steme_lake as sl
from steme_lake.client import Client
from steme_lake.keys import AgentRegistry
from tests.api._server import Server, _free_port
from tests.conftest import PYTHON, child_env


@pytest.fixture
def key(lake_path: Path) -> sl.AgentKey:
    sl.open(lake_path).close()
    k = sl.AgentKey.generate()
    AgentRegistry(lake_path).register("research-agent", k.public_key)
    return k


@pytest.fixture
def server(lake_path: Path, key: sl.AgentKey) -> Iterator[Server]:
    s = Server(lake_path)
    yield s
    s.stop()


class TestRealServer:
    """The server and other processes use one lake at the same time."""

    def test_shared_with_another_process(
        self, server: Server, key: sl.AgentKey, lake_path: Path
    ) -> None:
        with Client(server.url, "research-agent", key=key) as client:
            es = client.assert_("auth/jwt", "alg", "ES256", confidence=0.8, source="rfc")
            with sl.open(lake_path) as notebook:
                assert notebook.get(es).agent == "research-agent"  # type: ignore[attr-defined]
                rs = notebook.assert_(
                    "auth/jwt", "alg", "RS256", agent="platform", lifecycle="approved", source="adr"
                )
                answer = client.query("auth/jwt", "alg")
                assert (answer["value"], answer["assertion"]) == ("RS256", rs)
                assert notebook.trace("research-agent", "-1h")["query_id"].to_list() == [
                    answer["query_id"]
                ]
            with pytest.raises(sl.UnknownRecordError):
                client.vote("12" * 32)

    def test_acknowledged_writes_survive_kill_9(
        self, server: Server, key: sl.AgentKey, lake_path: Path
    ) -> None:
        """8 concurrent clients; every write the server answered is in the lake after kill -9."""

        def writer(n: int) -> list[str]:
            with Client(server.url, "research-agent", key=key) as client:
                return [
                    client.assert_(f"svc/{n}/auth", "alg", i, source=f"s{n}-{i}") for i in range(25)
                ]

        with ThreadPoolExecutor(8) as pool:
            acked = [rid for ids in pool.map(writer, range(8)) for rid in ids]
        server.stop(signal.SIGKILL)
        with sl.open(lake_path) as lake:
            stored = set(lake.assertions.select("id").collect()["id"])
        assert len(acked) == 200 and set(acked) <= stored

    def test_kill_9_mid_load(self, server: Server, key: sl.AgentKey, lake_path: Path) -> None:
        """Killed while 8 clients write and ask: every write and every question the
        server answered is in the lake (the questions' audit records too), and the
        lake opens cleanly with nothing half-written in it."""
        stop = threading.Event()
        acked: list[str] = []
        asked: list[str] = []
        endings: list[BaseException] = []

        def agent(n: int) -> None:
            with Client(server.url, "research-agent", key=key, timeout=10) as client:
                i = 0
                try:
                    while not stop.is_set():
                        acked.append(client.assert_(f"svc/{n}/auth", "alg", i, source=f"s{n}-{i}"))
                        asked.append(client.query(f"svc/{n}/auth", "alg")["query_id"])
                        i += 1
                except Exception as exc:  # noqa: BLE001 - the kill drops the connection; checked below
                    endings.append(exc)

        threads = [threading.Thread(target=agent, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(asked) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert len(asked) >= 200, "the server answered too few questions before the kill"
        # Each client stopped because the connection went away, not on an error reply.
        assert endings and all(isinstance(e, sl.ServerConnectionError) for e in endings), endings
        with sl.open(lake_path) as lake:
            stored = set(lake.assertions.select("id").collect()["id"])
            audited = set(lake.audit.select("id").collect()["id"])
            assert set(acked) <= stored and set(asked) <= audited
            # Nothing beyond what was acknowledged, save the requests in flight at the kill.
            assert len(stored - set(acked)) <= 8 and len(audited - set(asked)) <= 8

    def test_json_errors_over_the_wire(self, server: Server) -> None:
        r = httpx.post(
            f"{server.url}/assert",
            content=b"{",
            timeout=10,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422 and r.json()["success"] is False
        r = httpx.post(
            f"{server.url}/assert",
            content=b"x" * (2 << 20),
            timeout=10,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413


class _Silent:
    """A TCP server on 127.0.0.1 that reads each request and then closes the
    connection without a reply (``hang``: keeps it open, never replies)."""

    def __init__(self, *, hang: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hang = hang
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            conn.recv(65536)
            if self.hang:
                self.held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


class TestNoAnswer:
    """A request that gets no answer raises `ServerConnectionError`, which says
    whether the request may have arrived and what to do (not httpx's own error)."""

    def test_nobody_listening(self, key: sl.AgentKey) -> None:
        url = f"http://127.0.0.1:{_free_port()}"
        running = "is `steme serve` running"
        with (
            Client(url, "a", key=key) as client,
            pytest.raises(sl.ServerConnectionError, match=running) as e,
        ):
            client.assert_("auth/jwt", "alg", "RS256", source="adr")
        assert e.value.sent is False and "Nothing was sent" in str(e.value)
        assert isinstance(e.value.__cause__, httpx.ConnectError)

    def test_connection_broken_mid_write(self, key: sl.AgentKey) -> None:
        silent = _Silent(hang=False)
        try:
            with Client(silent.url, "a", key=key) as client:
                with pytest.raises(sl.ServerConnectionError, match="may or may not") as e:
                    client.assert_("auth/jwt", "alg", "RS256", source="adr")
                assert e.value.sent is True and "POST /assert" in str(e.value)
                # A question writes nothing the caller must look for.
                with pytest.raises(sl.ServerConnectionError, match="broke") as q:
                    client.query("auth/jwt", "alg")
                assert "may or may not" not in str(q.value)
        finally:
            silent.close()

    def test_timeout(self, key: sl.AgentKey) -> None:
        silent = _Silent(hang=True)
        try:
            with (
                Client(silent.url, "a", key=key, timeout=0.3) as client,
                pytest.raises(sl.ServerConnectionError, match="in time") as e,
            ):
                client.vote("ab" * 32)
            assert e.value.sent is True and "Client(timeout=" in str(e.value)
        finally:
            silent.close()


def test_serve_refuses_a_missing_lake(tmp_path: Path) -> None:
    done = subprocess.run(
        [PYTHON, "-m", "steme_lake", "serve", "--lake", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert done.returncode == 2 and "is not a steme_lake" in done.stderr
    assert os.environ.get("STEME_LAKE") != str(tmp_path / "none")
