"""Fast generation engines: the same step as the eager model, computed another way.

``engine.py`` holds ``compiled``: SaShiMi's whole sample step fused in C
(``sashimi_step.c``), compiled on first use with the machine's C compiler. Engines are
records (:class:`audio_models.sampling.EngineSpec`) the builders attach to the models they
apply to; :func:`audio_models.sampling.generate` chooses among them.
"""
