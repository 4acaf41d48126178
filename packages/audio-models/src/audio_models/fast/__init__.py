"""Fast generation engines: the same step as the eager model, computed another way.

``engine.py`` holds SaShiMi's ``compiled`` engine (its whole sample step fused in C,
``sashimi_step.c``) and the compiler cache every C step shares; ``wavenet.py`` WaveNet's
(``wavenet_step.c``); ``samplernn.py`` SampleRNN's (its weights folded once, plain torch);
``fused.py`` SaShiMi's ``triton`` engine for CUDA GPUs (one Triton kernel per tier step,
``triton_tier.py``, one CUDA graph per period).
Engines are records (:class:`audio_models.sampling.EngineSpec`) the builders attach to the
models they apply to; :func:`audio_models.sampling.generate` chooses among them.
"""
