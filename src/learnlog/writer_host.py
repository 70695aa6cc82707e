"""The writer host process (decision 0019): `python -m learnlog.writer_host SOCKET`, which
`learnlog serve` starts through `service.writer_link.Supervisor` when several workers
serve an SQLite file. It builds its runtime like every other process, then serves the
workers on the socket with the instance's one writer and runs the outbox loop.

What this module must not do: hold any part of the socket protocol (that is
`service/writer_link.py`); it only puts a runtime and a `WriterHost` together.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from .bootstrap import bootstrap, freeze_startup
from .service.writer import Writer
from .service.writer_link import WriterHost
from .settings import Settings


def host_main(path: str) -> None:
    """The writer host process: the instance's one writer and its outbox loop, serving
    the workers on `path` until SIGTERM or SIGINT (or until its parent is gone)."""
    settings = Settings().model_copy(update={"writer_socket": ""})
    rt = bootstrap(settings, run_migrations=False)
    assert isinstance(rt.writer, Writer)
    host = WriterHost(rt.writer, path)
    host.listen()
    freeze_startup()
    told = threading.Event()

    def stop(_signum: int, _frame: object) -> None:
        told.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = os.getppid()
    host.start()  # the writer's loop first: the outbox loop hands it work at once
    rt.start(writer_thread=False)  # the outbox loop; the writer runs on the host's loop
    try:
        # `learnlog serve` killed: do not outlive it
        while not told.wait(0.5) and os.getppid() == parent:
            pass
    finally:
        if rt.outbox_loop is not None:  # while the writer still runs: it finishes its batch
            rt.outbox_loop.stop()
            rt.outbox_loop = None
        host.stop()  # the commands that have arrived are applied and answered
        rt.close()
        if os.path.exists(path):
            os.unlink(path)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    host_main(sys.argv[1])
