"""The tutorial's model, ready to bind to any pool with ``db.bind([User])``."""

from __future__ import annotations

from peewee import CharField, Model


class User(Model):
    """A user with a unique name: the model the tutorial creates and selects."""

    username = CharField(unique=True)
