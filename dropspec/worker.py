"""Observations in a worker process that dropspec can kill.

A framework runs native code: it can segfault, call ``os._exit``, raise ``SystemExit``, or hang in a
call that holds the GIL, where no thread can stop it. So every observation of a run happens in one
worker process per adapter, started once (the framework is imported once) and reused case after case.
When a case kills the worker or runs past its timeout, the worker is killed, the case is recorded as
an ``error`` that says what happened, and a fresh worker takes the next case: nothing a case does
(a process-global RNG it disturbed, a thread it left running) reaches the cases after it.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from .heap import keep_freed_memory, no_huge_page_advice

if TYPE_CHECKING:
    from .adapter import Adapter
    from .spec import Spec

# observe(adapter, case, spec) -> an observation: the engine passes its own (so this module never imports it)
Observe = Callable[[Any, Any, Any], Any]

# spawn, not fork: a forked child would inherit a framework's threads and locks in whatever state they were
CONTEXT = multiprocessing.get_context("spawn")


STARTUP_TIMEOUT = 300.0


class WorkerError(RuntimeError):
    """The worker process could not be started."""


def error_record(kind: str, message: str, trace: str = "") -> dict[str, str]:
    return {"type": kind, "message": message, "traceback": trace}


def _serve(observe: Observe, adapter: Adapter, spec: Spec, conn: Connection) -> None:
    """The worker's loop: observe each case id it is sent, send the observation back."""
    # the framework's import is the worker's start, not the first case's time, and it fills much of the heap: the
    # reserve of dropspec.heap comes after it
    try:
        adapter.unavailable_reason()
    except BaseException:  # an import that exits: the first case imports it again and records how, with its traceback
        pass
    keep_freed_memory()
    no_huge_page_advice()
    cases = None
    conn.send("ready")
    while True:
        try:
            case_id = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if case_id is None:
            return
        try:
            if cases is None:
                cases = {c.id: c for c in adapter.cases()}
            reply: Any = observe(adapter, cases[case_id], spec)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from adapter code too: a finding
            reply = error_record(type(exc).__name__, str(exc)[:2000], "".join(traceback.format_exception(exc))[-4000:])
        conn.send(reply)


def _death(process: multiprocessing.process.BaseProcess) -> str:
    code = process.exitcode
    if code is None:
        return "the worker process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker process was killed by {name}"
    return f"the worker process exited with status {code}"


class Worker:
    """One adapter's worker process. ``observe`` never raises: a death or a timeout is an observation
    with ``error`` set, and the next call starts a fresh worker."""

    def __init__(self, adapter: Adapter, spec: Spec, observe: Observe) -> None:
        self.adapter, self.spec, self.observe_case = adapter, spec, observe
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.started = 0  # how many worker processes this run has started

    def _start(self) -> None:
        parent, child = CONTEXT.Pipe()
        args = (self.observe_case, self.adapter, self.spec, child)
        self.process = CONTEXT.Process(target=_serve, args=args, name=f"dropspec-{self.adapter.name}", daemon=True)
        self.process.start()
        child.close()
        self.conn, self.started = parent, self.started + 1
        # the start (a fresh interpreter, dropspec, the adapter's module) is not part of any case's time
        if not parent.poll(STARTUP_TIMEOUT):
            raise WorkerError(f"the worker process did not start within {STARTUP_TIMEOUT:g} s")
        parent.recv()

    def _kill(self) -> None:
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None

    def close(self) -> None:
        if self.conn is not None and self.process is not None and self.process.is_alive():
            try:
                self.conn.send(None)
                self.process.join(5)
            except (BrokenPipeError, OSError):
                pass
        self._kill()

    def observe(self, case_id: str, timeout: float) -> Any:
        """The observation of one case, or an error record (a dict) when the worker died, raised past the
        engine, or ran past ``timeout`` seconds."""
        if self.process is None or not self.process.is_alive():
            self._kill()
            try:
                self._start()
            except (WorkerError, EOFError, OSError) as exc:
                how = _death(self.process) if self.process is not None else "no process"
                self._kill()
                return error_record("WorkerDied", f"{exc or 'the worker process failed to start'} ({how})")
        assert self.conn is not None and self.process is not None
        start = time.monotonic()
        try:
            self.conn.send(case_id)
            ready = self.conn.poll(timeout)
            reply = self.conn.recv() if ready else None
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            self.process.join(5)
            reply, ready = None, True
        if reply is not None:
            return reply
        if not ready:
            self._kill()
            return error_record(
                "Timeout",
                f"case {case_id!r} did not finish within {timeout:g} s; its worker process was killed and replaced",
            )
        how = _death(self.process)
        elapsed = time.monotonic() - start
        self._kill()
        return error_record("WorkerDied", f"{how} while observing case {case_id!r} (after {elapsed:.1f} s)")
