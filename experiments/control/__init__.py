"""Control benchmark: episodic group policy gradients (any og.estimators advantage) and PPO."""
