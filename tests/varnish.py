"""A real Varnish (Debian's varnishd + varnish-modules) running deploy/varnish/default.vcl.

The production VCL is used as it is; only backend.vcl, the one file that names where misses
go, is written here: a round-robin director over replicas on 127.0.0.1 (in the stacks,
nginx's internal server does the balancing). Started through lifeline.spawn, so it dies
with the test run whatever ends it; stopped by its PID.
"""

from __future__ import annotations

import http.client
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import lifeline, servers
from .conftest import system_binary

ROOT = Path(__file__).resolve().parents[1]
VCL = ROOT / "deploy" / "varnish" / "default.vcl"

BACKEND_VCL = """import directors;
{backends}
sub vcl_init {{
    new replicas = directors.round_robin();
{adds}
}}
sub choose_backend {{
    set req.backend_hint = replicas.backend();
}}
"""
ONE_BACKEND = """backend r{n} {{
    .host = "127.0.0.1";
    .port = "{port}";
    .connect_timeout = 2s;
    .first_byte_timeout = 35s;
    .probe = {{ .url = "/livez"; .interval = 1s; .timeout = 1s; .window = 2; .threshold = 1; }}
}}"""


def varnishd_binary() -> str:
    """varnishd on PATH or in /usr/sbin; skip loudly (fail under CI) without it."""
    return system_binary("varnishd", "varnish varnish-modules")


def render_backends(workdir: Path, ports: list[int]) -> Path:
    """The VCL directory: the production default.vcl and a backend.vcl for these ports."""
    vcl_dir = workdir / "vcl"
    vcl_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(VCL, vcl_dir / "default.vcl")
    backends = "\n".join(ONE_BACKEND.format(n=i, port=p) for i, p in enumerate(ports))
    adds = "\n".join(f"    replicas.add_backend(r{i});" for i in range(len(ports)))
    (vcl_dir / "backend.vcl").write_text(BACKEND_VCL.format(backends=backends, adds=adds))
    return vcl_dir


@dataclass
class Varnish:
    """varnishd in the foreground on 127.0.0.1:port."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def get(self, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        """One GET on a fresh connection; the body is read (response.data)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.data = response.read()  # type: ignore[attr-defined]
        conn.close()
        return response

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def start_varnish(
    workdir: Path,
    backend_ports: list[int],
    port: int = 0,
    before_vcl: str = "",
    after_vcl: str = "",
) -> Varnish:
    """Start varnishd (on `port`, or a free one) with the production VCL; wait for it.

    `before_vcl` and `after_vcl` go before and after the production VCL: VCL joins repeated
    definitions of a built-in subroutine in order, so a test can widen a race window there.
    """
    binary = varnishd_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    vcl_dir = render_backends(workdir, backend_ports)
    main_vcl = vcl_dir / "default.vcl"
    if before_vcl or after_vcl:
        main_vcl = vcl_dir / "test.vcl"
        main_vcl.write_text(f'vcl 4.1;\n{before_vcl}\ninclude "default.vcl";\n{after_vcl}\n')
    port = port or servers.free_port()
    log = (workdir / "varnishd.log").open("ab")
    process = lifeline.spawn(
        [
            binary,
            "-F",
            "-n",
            str(workdir / "varnish-n"),
            "-a",
            f"127.0.0.1:{port}",
            "-T",
            "none",
            # No privilege separation: as root, varnishd would switch to the varnish user,
            # which cannot read pytest's private temp directories.
            "-j",
            "none",
            "-p",
            f"vcl_path={vcl_dir}",
            "-f",
            str(main_vcl),
            "-s",
            "malloc,64m",
        ],
        sig=signal.SIGTERM,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.close()
            raise AssertionError(f"varnishd exited:\n{(workdir / 'varnishd.log').read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/livez")
            conn.getresponse().read()
            conn.close()
            return Varnish(port, workdir, process, log)
        except OSError:
            time.sleep(0.1)
    process.kill()
    process.wait(timeout=10)
    log.close()
    raise AssertionError("varnishd did not answer within 30 s")
