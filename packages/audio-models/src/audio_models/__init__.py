"""sashimi-audio-models.

SaShiMi (pooling, expand, ff, U-Net, bidirectional), SampleRNN, WaveNet and DiffWave with a
SaShiMi backbone; autoregressive sampling with exact log-likelihoods.
"""
