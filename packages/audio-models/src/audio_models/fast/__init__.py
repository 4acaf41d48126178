"""Fast generation engines: the same step as the eager model, computed another way.

``engine.py`` picks one (``auto``, ``eager``, ``compiled``) and wraps it in a common
``Stepper``; ``compiled`` is SaShiMi's whole sample step fused in C (``sashimi_step.c``),
compiled on first use with the machine's C compiler.
"""
