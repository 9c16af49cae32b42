"""The live widgets: a canvas view drawn in the browser (``view.py`` + ``live/js/``) and the apps built on it.

``view`` and ``packing`` are the view layer (events in, packed batches out);
``dashboard``, ``replay`` and ``compare`` are the JupyterLab apps. Import them
from their modules or from :mod:`poolviz.widgets`; this ``__init__`` imports
nothing, so loading the view never loads the apps.
"""
