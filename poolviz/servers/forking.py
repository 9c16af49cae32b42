"""A pool opened before ``fork()``: what the child inherits, shown safely, and the fix.

``fork()`` copies the parent's memory, so a pool opened before it is copied
too: the child's pool holds the *same* sockets, which reach the *same* server
sessions. Two processes then talk over one session. Used at the same time,
their protocol messages interleave (wrong results, a hung client); used one
after the other, they still break each other: whoever closes the connection
(a child tidying up with ``close_all()`` before it exits) ends the session
for both.

:func:`child_session` forks one child (``multiprocessing``'s ``fork`` start
method) that takes a connection from the inherited pool, reports the
server's id for it (:func:`session_id`), gives it back and exits without
touching the parent's use of it, so the sharing can be seen with nothing
interleaved. ``dispose=True`` makes the child call the pool's ``dispose()``
first: the pool forgets the inherited connections *without closing them*
(closing would end the parent's sessions), and the child opens its own.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from ..backends import SESSION_SQL, backend_of
from ..credentials import mask_text


def _backend(db: Any) -> str:
    backend = backend_of(db)
    if backend not in SESSION_SQL:
        raise ValueError(f"session ids need a MariaDB/MySQL or PostgreSQL pool, got {type(db).__name__}")
    return backend


def session_id(db: Any) -> int:
    """The server's id for the session of ``db``'s current connection: PostgreSQL's backend pid, MariaDB's thread id."""
    return int(db.execute_sql(SESSION_SQL[_backend(db)]).fetchone()[0])


def _child(db: Any, dispose: bool, close_all: bool, out: Any) -> None:
    try:
        if dispose:
            db.dispose()
        with db.connection_context():
            sid = session_id(db)
        if close_all:
            db.close_all()  # the well-meant tidy-up that ends the parent's session too
        out.send(("ok", sid))
    except Exception as exc:  # reported to the parent, which raises it with the child's text
        out.send(("error", f"{type(exc).__name__}: {mask_text(str(exc))}"))
    finally:
        out.close()


def child_session(db: Any, dispose: bool = False, close_all: bool = False, timeout: float = 20.0) -> int:
    """Fork a child that checks a connection out of ``db`` (inherited), returns its :func:`session_id`.

    ``dispose=True``: the child first calls ``db.dispose()`` and so opens a
    connection of its own. ``close_all=True``: the child then calls
    ``db.close_all()`` before it exits, closing whatever its pool holds.
    The child exits with ``os._exit`` (``multiprocessing`` does that), so no
    other clean-up of the inherited connections runs in it.
    """
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(db, dispose, close_all, writer), name="poolviz-fork-child")
    child.start()
    writer.close()
    try:
        if not reader.poll(timeout):
            raise TimeoutError(f"the forked child sent nothing within {timeout} s")
        status, value = reader.recv()
    finally:
        reader.close()
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
    if status != "ok":
        raise RuntimeError(f"the forked child failed: {value}")
    return int(value)
