"""The ``sashimi-audio-metrics`` plugin, loaded through its ``audio_run`` entry point.

This release implements no hook yet, so ``audio-run plugins`` lists the distribution with empty
lists; it will register the metrics (``register_metrics``) and the ``audio-run classifier`` and
``audio-run evaluate`` commands (``register_commands``).
"""
