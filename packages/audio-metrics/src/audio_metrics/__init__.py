"""sashimi-audio-metrics.

the SC09 ResNeXt classifier and the automated metrics FID, IS, mIS, AM score and NDB, with the
likelihood-threshold tuning used for autoregressive models.
"""
