"""The runner behind ``audio-run train`` and ``audio-run generate``.

Imported only by those commands' handlers (it needs torch); ``audio-run --help``, ``list`` and
``plugins`` never load it.
"""
