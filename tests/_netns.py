"""Run a command in a network namespace of its own, with only loopback up.

    python tests/_netns.py COMMAND [ARGS...]

The Ray tests (tests/ray) need it: Ray binds every interface and looks for the
machine's address by reaching out to a public DNS server, where the tests
must stay on 127.0.0.1. In a namespace of their own, the Ray cluster, the S3
server and the tests see only loopback. Tries ``unshare -n`` (root), then
``unshare -rn`` (an unprivileged user namespace). Where neither works, the
command runs where it is, and the Ray tests skip themselves, saying why.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    """``ip link set lo up``, without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | _IFF_UP))


def _ray_processes_here() -> list[int]:
    """The Ray processes in this network namespace (not this process)."""
    mine, me, found = os.readlink("/proc/self/ns/net"), os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/net") != mine:
                continue
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if comm in ("raylet", "gcs_server") or comm.startswith("ray::") or b"/ray/" in cmdline:
            found.append(int(entry))
    return found


def stop_ray_here(timeout: float = 10.0) -> None:
    """Stop the Ray cluster started in this network namespace, and no other (where
    ``ray stop`` would stop every Ray cluster on the machine, a developer's own too)."""
    if os.environ.get("STEME_NETNS") != "1":
        raise RuntimeError("stop_ray_here() is for a private network namespace only")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _ray_processes_here():
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while _ray_processes_here() and time.monotonic() < deadline:
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "--inside":
        _loopback_up()
        os.environ["STEME_NETNS"] = "1"
        os.execvp(argv[1], argv[1:])
    unshare = shutil.which("unshare")
    for flags in (["-n"], ["-rn"]):
        if (
            unshare
            and subprocess.run([unshare, *flags, "true"], capture_output=True).returncode == 0
        ):
            os.execv(unshare, [unshare, *flags, sys.executable, __file__, "--inside", *argv])
    print(
        "tests/_netns.py: no network namespace could be made here (needs root, or "
        "unprivileged user namespaces); running without one",
        file=sys.stderr,
    )
    os.environ["STEME_NETNS"] = "unavailable"
    os.execvp(argv[0], argv)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
