"""SIGTERM and Ctrl-C for the CLIs: raised in the main thread (``Terminated``, KeyboardInterrupt)
so that ``atomic_dir`` removes its temporary directory, but never where raising leaks a lock.

Where not to raise: the import system and logging take a lock and then enter ``try``
(``_imp.acquire_lock()`` / ``lock.acquire()``, then ``try:``), and run callbacks whose exceptions
Python prints and drops (a weakref callback of the import system's module locks, logging's fork
hooks). A signal handled between the two leaked the lock: a writer thread's next import waited for
it for good and so did ``pool.shutdown(wait=True)`` (generate_data hung after SIGTERM, ~1 run in 15
under concurrent imports); one handled in a callback was lost and the run went on. There (and
inside a handler itself: a second signal while the first is being deferred) the handler returns
and the signal is sent again, to the main thread, every ``RESEND_EVERY`` seconds until a handler
call raises it.

Again and not once: a signal that lands just before the main thread blocks (between the
interpreter's last check and a sleep's or a lock's system call) is handled only when the thread
wakes: a run asleep in ``time.sleep(60)`` ignored a SIGTERM resent once, under load, ~1 run in 80
(a full suite and a looped run of its test). The resends stop when one is raised; one that
crossed that raise is ignored (``ECHO``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

RESEND_EVERY = 0.05   # seconds between the resends of a deferred signal
ECHO = 1.0            # seconds after a raise in which the same signal is a resend's late echo
_DEFER_IN = frozenset({"_frozen_importlib", "_frozen_importlib_external",
                       "importlib._bootstrap", "importlib._bootstrap_external", "logging"})
_HANDLERS: set[object] = set()     # the code of the handlers (a signal there: a nested one)
_pending: int | None = None        # the deferred signal, until a handler call raises it
_resending = False                 # a resender thread is running (it clears this as it ends)
_resender: threading.Thread | None = None
_starting = False                  # this process's main thread is starting the resender
_echo: tuple[int, float] = (0, 0.0)   # (signal, until): a resend that crossed its raise


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``atomic_dir`` removes its temporary directory."""


def signal_handler(fn: Callable[[int, object], None]) -> Callable[[int, object], None]:
    """Mark ``fn`` as a handler that calls ``deferred``: a signal handled while ``fn`` runs is a
    nested one, deferred too (raised there it would leave the frame ``fn`` was called in)."""
    _HANDLERS.add(fn.__code__)
    return fn


def deferred(signum: int, frame: object) -> bool:
    """For a handler called in ``frame``: True when it must not raise (the signal is then sent
    again later, or it is a late resend of one already raised); False when it raises now (and
    the resends stop)."""
    global _pending, _echo
    if (_starting or getattr(frame, "f_code", None) in _HANDLERS
            or getattr(frame, "f_globals", {}).get("__name__") in _DEFER_IN):
        _pending = signum
        _ensure_resender()
        return True
    if _pending is None:
        return _echo[0] == signum and time.monotonic() < _echo[1]
    _pending = None   # raised now: the resender ends; a resend already on its way is an echo
    _echo = (signum, time.monotonic() + ECHO)
    return False


def _ensure_resender() -> None:
    global _starting, _resending, _resender
    if _starting or _resending:
        return
    _starting = True   # a signal while the thread starts (threading's code): deferred
    try:
        _resending = True
        _resender = threading.Thread(target=_resend, args=(threading.main_thread().ident,),
                                     name="shocklab-signal-resend", daemon=True)
        _resender.start()
    except RuntimeError:   # no thread to be had ("can't start new thread"): the next one tries
        _resending = False
    finally:
        _starting = False


_HANDLERS.update({deferred.__code__, _ensure_resender.__code__})   # H1 deferring, then H2


def _resend(main_ident: int) -> None:
    """Send ``_pending`` to the main thread every ``RESEND_EVERY`` seconds until it is raised.
    To the main thread: one sent to the process may be taken by any thread, and then a main
    thread blocked in a sleep or a lock is not woken."""
    global _resending
    while True:
        time.sleep(RESEND_EVERY)
        signum = _pending
        if signum is None:
            _resending = False
            if _pending is None:   # set again meanwhile: that deferral saw us running, go on
                return
            _resending = True
            continue
        try:
            signal.pthread_kill(main_ident, signum)
        except (OSError, ValueError):   # the main thread has ended
            _resending = False
            return


def end_resends(wait: float = 1.0) -> None:
    """No resend after this (``run_cli``, before it restores the previous handlers): a pending
    signal is dropped (the run is ending) and the resender waited for, up to ``wait`` s."""
    global _pending, _echo
    _pending = None
    t = _resender
    if t is not None and t is not threading.current_thread():
        t.join(wait)
        if not t.is_alive():   # no resend can come any more: the next signal is a new one
            _echo = (0, 0.0)


def _after_fork_in_child() -> None:
    """A forked child has no resender (threads are not forked) and no signal of its parent's."""
    global _pending, _resending, _resender, _starting, _echo
    _pending, _resending, _resender, _starting, _echo = None, False, None, False, (0, 0.0)


os.register_at_fork(after_in_child=_after_fork_in_child)


@signal_handler
def on_sigterm(signum: int, frame: object) -> None:
    if not deferred(signum, frame):
        raise Terminated()


@signal_handler
def on_sigint(signum: int, frame: object) -> None:
    """Ctrl-C: Python's KeyboardInterrupt, deferred where SIGTERM's Terminated is (a Ctrl-C
    between the import lock's acquire and its ``try`` hung a run as SIGTERM did: 1 run in 40)."""
    if not deferred(signum, frame):
        raise KeyboardInterrupt
