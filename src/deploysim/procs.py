"""Worker processes that never outlive the process that started them.

A process pool's workers are separate processes: if the parent is killed with SIGKILL it cannot
stop them, and a worker busy on a long task (or blocked in a library) can keep running for
minutes, holding hundreds of megabytes, with the resource tracker kept alive beside it. On Linux
:func:`die_with_parent`, run as the pool's initializer, asks the kernel to send the worker
SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``). Elsewhere it falls back to a daemon
thread that exits the worker when the parent's pid changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

PR_SET_PDEATHSIG = 1


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def die_with_parent(parent: int | None = None) -> None:
    """Make this (worker) process die when its parent does."""
    parent = parent if parent is not None else os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before the request took effect
                os._exit(1)
            return
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="die-with-parent").start()


def _init(parent: int, initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def worker_pool(workers: int, *, initializer: Callable[..., Any] | None = None,
                initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A ``spawn`` process pool whose workers die with this process (see the module docstring)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init,
                               initargs=(os.getpid(), initializer, initargs))
