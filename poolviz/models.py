"""The tutorial's model, ready to bind to any pool with ``db.bind([User])``."""

from __future__ import annotations

from typing import Any

from peewee import CharField, Model


class User(Model):
    """A user with a unique name: the model the tutorial creates and selects."""

    username = CharField(unique=True)


def user_model(db: Any) -> type[User]:
    """``User`` bound to ``db`` alone: a subclass on the same table, for code that must not bind ``User`` itself.

    ``db.bind([User])`` (the tutorial's way) is process-wide, and peewee reads
    the model's database while it builds a query (an insert asks it whether to
    add ``RETURNING``), so even ``query.execute(db)`` is not independent of the
    binding. The workloads use one of these per run instead, so runs on
    different pools, and the reader's own ``bind``, never disturb each other.
    """

    class RunUser(User):
        class Meta:
            database = db
            table_name = User._meta.table_name  # type: ignore[attr-defined]

    return RunUser
