"""sashimi-ssm-kernels.

S4 (DPLR) and S4D (diagonal) state-space kernels: HiPPO initialisations, discretisation, the
convolutional mode used for training and the recurrent mode used for generation, exactly
equivalent.
"""
