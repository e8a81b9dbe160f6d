"""Azurite with its built-in development account (the archive import tests): its blob
service on a free loopback port, started for a test and stopped after, so the real azure-storage-blob
client is exercised against the Blob REST API without Azure."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's one built-in development account; its key is published in Azurite's documentation and opens
# nothing but a local emulator.
ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Azurite:
    def __init__(self, location: Path) -> None:
        self.location = location
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={DEV_KEY};BlobEndpoint={self.account_url};"
        )

    def __enter__(self) -> Azurite:
        if not BIN.exists() and shutil.which("azurite-blob") is None:
            raise RuntimeError("azurite is not installed: run `npm ci` (make node)")
        self.location.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # the port is free when picked; another process may take it before Azurite does
            self.port = free_port()
            self.proc = subprocess.Popen(
                [
                    str(BIN),
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    str(self.port),
                    "--location",
                    str(self.location),
                    "--silent",
                    "--skipApiVersionCheck",
                    "--loose",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._ready():
                return self
            self._stop()
        raise RuntimeError("azurite did not start")

    def _ready(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.1)  # waiting for a child process to listen, not timing the code under test
        return False

    def _stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # a throwaway emulator: killed, not asked (on SIGTERM it waits ~10 s for kept-alive clients)
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __exit__(self, *exc: object) -> None:
        self._stop()
