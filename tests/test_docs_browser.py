"""/docs in a real browser with no internet: headless Chromium against the served app.

The network is limited to 127.0.0.1 (every other host resolves to nothing and every other
connection goes to a closed proxy port), so a page that needs a CDN renders blank here, as
it does on a laptop offline. Chromium's net log records every request it tried, so a request
to any other host is seen even though it could not succeed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from . import servers

# Starts server processes of its own: the slow tier (README, Development).
pytestmark = pytest.mark.slow

CLI = str(Path(sys.executable).parent / "flipkart-api")
OFFLINE = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1",
    "--virtual-time-budget=15000",
]
CONSOLE_ON_STDERR = ["--enable-logging=stderr", "--v=0"]
CSP_VIOLATION = re.compile(r"Content[ -]Security[ -]Policy", re.IGNORECASE)
ACCESS_LINE = re.compile(r'"GET (\S+) HTTP/[\d.]+" (\d{3})')


def _chromium() -> str:
    """The chromium binary; missing it is a skip here and a failure under CI=true."""
    binary = shutil.which("chromium")
    if binary is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return binary


@contextlib.contextmanager
def served(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """`flipkart-api serve` (granian, embedded default) on a free port: (base URL, log)."""
    port = servers.free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "HOST": "127.0.0.1"}
    proc = subprocess.Popen(
        [CLI, "serve"],
        env=env | {"PORT": str(port)},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(base + "/livez", timeout=2),  # noqa: S310 - ours
            ):
                break
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield base, output
    finally:
        proc.send_signal(signal.SIGTERM)
        output.extend(proc.communicate(timeout=30)[0].decode().splitlines())


def _browse(chromium: str, profile: Path, url: str, *args: str) -> str:
    """Run Chromium once, offline, on a fresh profile; its stdout. A CSP violation fails.

    With logging on stderr Chromium prints the page's console, where a blocked script,
    style, image or fetch is reported as "... violates the following Content Security
    Policy directive ...".
    """
    result = subprocess.run(
        [
            chromium,
            *OFFLINE,
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    violations = [line for line in result.stderr.splitlines() if CSP_VIOLATION.search(line)]
    assert not violations, violations
    return result.stdout


def _page_requests(net_log: Path, site: str) -> list[str]:
    """URLs the page asked for (Chromium's own background requests have another key)."""
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and "url" in event.get("params", {})
        and event["params"].get("network_isolation_key", "").startswith(site)
    ]


def test_docs_render_offline_from_our_own_assets(tmp_path: Path) -> None:
    """The operation list renders, every request stays on 127.0.0.1 and is answered."""
    chromium = _chromium()
    net_log = tmp_path / "net.json"
    with served(tmp_path) as (base, output):
        # The page is served under a policy (so the browser below enforces one), and a strict
        # one: nothing from elsewhere, no inline code but the page's own, by hash.
        with urllib.request.urlopen(base + "/docs", timeout=10) as page:  # noqa: S310 - ours
            policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self' 'sha256-" in policy, policy
        assert "unsafe-inline" not in policy, policy
        assert "unsafe-eval" not in policy, policy
        dom = _browse(
            chromium, tmp_path / "profile", base + "/docs", f"--log-net-log={net_log}", "--dump-dom"
        )
        screenshot = tmp_path / "docs.png"
        _browse(
            chromium,
            tmp_path / "profile2",
            base + "/docs",
            f"--screenshot={screenshot}",
            "--window-size=1280,900",
        )
    # Swagger UI ran: one opblock per operation, the products listing among them.
    assert 'data-path="/api/v1/products"' in dom, dom[-2000:]
    assert len(re.findall(r'class="opblock opblock-', dom)) >= 20
    requests = _page_requests(net_log, "http://127.0.0.1")
    assert f"{base}/openapi.json" in requests
    elsewhere = [url for url in requests if urlsplit(url).hostname != "127.0.0.1"]
    assert not elsewhere, elsewhere
    assert not [url for url in requests if urlsplit(url).path == "/None"], requests
    assert any("favicon" in url for url in requests), requests  # a real one, not "None"
    # Every request the browser made was answered 200 (no 404 for a missing asset).
    answered = dict(ACCESS_LINE.findall("\n".join(output)))
    paths = [urlsplit(url).path for url in requests]
    assert {path: answered.get(path) for path in paths} == dict.fromkeys(paths, "200"), output
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
