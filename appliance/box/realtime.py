"""Real-time priority for the player thread only (SCHED_FIFO within RLIMIT_RTPRIO).

Inference and everything else stay at normal priority. Where the system does not allow it
(no LimitRTPRIO, a container, macOS), one log line says so and the box plays on at normal
priority.
"""
from __future__ import annotations

import logging
import os
import resource
import sys

log = logging.getLogger(__name__)

#: A thread waiting for the GIL asks the holder to let go after this long (default 5 ms):
#: the player thread, woken for a note, must not wait longer than this behind another thread.
SWITCH_INTERVAL_S = 0.0001


def allowed_priority() -> int:
    """The highest SCHED_FIFO priority this process may take (0 = none)."""
    if not hasattr(os, "sched_get_priority_max"):
        return 0
    top = os.sched_get_priority_max(os.SCHED_FIFO)
    if os.geteuid() == 0:
        return top
    soft, _hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    if soft == resource.RLIM_INFINITY:
        return top
    return min(int(soft), top)


def make_current_thread_realtime(priority: int = 20) -> bool:
    """SCHED_FIFO at ``priority`` (capped by the limit) for the calling thread.

    On Linux, ``sched_setscheduler(0, …)`` applies to the calling thread only. Returns True
    on success; on failure logs one line saying what to change.
    """
    if not sys.platform.startswith("linux"):
        log.info("real-time priority: not on Linux; the player runs at normal priority")
        return False
    cap = allowed_priority()
    if cap <= 0:
        log.warning("real-time priority not allowed (RLIMIT_RTPRIO is 0); the player runs at "
                    "normal priority. Set LimitRTPRIO= in the unit, or an rtprio line in "
                    "/etc/security/limits.d for a desktop user")
        return False
    wanted = max(1, min(priority, cap))
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(wanted))
    except OSError as exc:
        log.warning("real-time priority refused (%s); the player runs at normal priority. "
                    "Check LimitRTPRIO= and that RestrictRealtime= is off, or the container's "
                    "real-time budget", exc.strerror or exc)
        return False
    log.info("player thread runs SCHED_FIFO at priority %d", wanted)
    return True


def is_realtime() -> bool:
    """Whether the calling thread runs SCHED_FIFO or SCHED_RR."""
    try:
        return os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR)
    except (AttributeError, OSError):
        return False


def shorten_gil_switch_interval() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)


#: Every thread of the box shares one GIL with the player: a thread descheduled by a busy
#: CPU while it holds the GIL makes the player late (priority inversion). A lower nice value
#: for the whole process (still SCHED_OTHER, like an audio daemon) keeps such windows short.
NICE = -10


def raise_process_priority(nice: int = NICE) -> bool:
    """Set the process's nice value to ``nice`` (inherited by threads made afterwards) when
    it is higher; the unit sets Nice= itself, elsewhere it needs root or RLIMIT_NICE."""
    if not hasattr(os, "setpriority"):
        return False
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current <= nice:
        return True
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError:
        log.info("nice %d not allowed (running at %d); set Nice= in the unit for steadier "
                 "timing on a busy machine", nice, current)
        return False
    return True
