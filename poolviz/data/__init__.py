"""The data layer: events as pandas frames (:mod:`.frames`, :mod:`.processes`), traces on disk
(:mod:`.traces`), the numbers drawn from them (:mod:`.analysis`) and queueing theory (:mod:`.queueing`).

It needs pandas and draws nothing; import the module you need, e.g.
``from poolviz.data import analysis``.
"""
