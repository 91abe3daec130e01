"""systemd's notify protocol (READY, WATCHDOG, RELOADING, STOPPING, STATUS) and the watchdog.

The datagram goes out through the ``sdnotify`` package; a new socket for each message, so
that a systemd restarted under the box (or a test changing $NOTIFY_SOCKET) is found again.
"""
from __future__ import annotations

import logging
import os

import sdnotify

log = logging.getLogger("appliance.box.service")


def sd_notify(state: str) -> bool:
    """Send one notify message to $NOTIFY_SOCKET (a path or an ``@abstract`` name); False
    when there is no socket (not under systemd) or it refused (logged)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    notifier = None
    try:
        notifier = sdnotify.SystemdNotifier(debug=True)   # debug: raise, so we can log it
        # sdnotify sends latin-1 and systemd reads UTF-8: only ASCII means the same to both
        notifier.notify(state.encode("ascii", "replace").decode("ascii"))
        return True
    except OSError as exc:
        log.warning("systemd notify failed (%s): %s", address, exc)
        return False
    finally:
        if notifier is not None and notifier.socket is not None:
            notifier.socket.close()


def watchdog_interval() -> float | None:
    """Half of WatchdogSec, when systemd asked for pings for this process.

    (sdnotify only sends; this is sd_watchdog_enabled(3), which only systemd-python has,
    and that needs libsystemd's headers to build: four lines here instead.)"""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid.isdigit() and int(pid) != os.getpid()):
        return None
    try:
        return max(0.05, int(usec) / 1e6 / 2)
    except ValueError:
        return None
