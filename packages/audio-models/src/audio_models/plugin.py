"""The ``sashimi-audio-models`` plugin, loaded through its ``audio_run`` entry point.

This release implements no hook yet, so ``audio-run plugins`` lists the distribution with empty
lists; it will register the SaShiMi, WaveNet and SampleRNN backbones and models
(``register_backbones``, ``register_models``).
"""
