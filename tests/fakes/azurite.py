"""Azurite (Microsoft's Azure Storage emulator, a package.json devDependency) as a test fixture.

`Azurite()` starts `node_modules/.bin/azurite-blob` on a free loopback port with its data in a temporary
folder and an account whose key is made up at start (`AZURITE_ACCOUNTS`), so no key lives in the code;
`.connection_string` is what `AOAI_LENS_BILLING__STORAGE_CONNECTION_STRING` takes, `.url` the
path-style account URL (`http://127.0.0.1:PORT/ACCOUNT`). `stop()` ends the process it started.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]
AZURITE_BLOB = ROOT / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "lensbilling"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Azurite:
    def __init__(self, location: Path) -> None:
        self.location = location
        self.key = base64.b64encode(secrets.token_bytes(64)).decode()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={self.key};BlobEndpoint={self.url};"

    def start(self, ready_within_s: float = 60.0) -> Azurite:
        if not AZURITE_BLOB.exists():
            raise RuntimeError(f"{AZURITE_BLOB} is missing: `make node` (npm ci) installs Azurite")
        self.port = free_port()
        env = {**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{self.key}"}
        self.proc = subprocess.Popen(
            [
                str(AZURITE_BLOB),
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
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + ready_within_s  # start-up wait, not a timed assertion
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"azurite-blob exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("azurite-blob did not listen in time") from None
                time.sleep(0.1)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            # a throwaway emulator: killed, not asked (on SIGTERM it waits ~10 s for kept-alive clients)
            proc.kill()
            proc.wait()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
