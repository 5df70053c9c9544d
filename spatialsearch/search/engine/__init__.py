"""The run itself on Ray Tune and Optuna: Tuner, trainable, scheduler, sampler, study,
Ray adapter. May import the space, places, tracking and the core; never outcome."""
