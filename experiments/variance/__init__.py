"""The paper's estimator studies: unbiasedness, LR/RP vs exact gradients, variance and SNR."""
