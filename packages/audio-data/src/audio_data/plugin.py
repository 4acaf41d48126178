"""The ``sashimi-audio-data`` plugin, loaded through its ``audio_run`` entry point.

This release implements no hook yet, so ``audio-run plugins`` lists the distribution with empty
lists; it will register the datasets (``register_datasets``) and the ``audio-run data`` command
(``register_commands``).
"""
