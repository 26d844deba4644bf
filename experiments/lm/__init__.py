"""LM RL fine-tuning with OrderGrad advantages: tiny Qwen3 on CPU, real checkpoints on TPU/GPU."""
