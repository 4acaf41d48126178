"""The ``sashimi-ssm-kernels`` plugin, loaded through its ``audio_run`` entry point.

This release implements no hook yet, so ``audio-run plugins`` lists the distribution with empty
lists; it will register the ``s4`` and ``s4d`` kernels (``register_kernels``).
"""
