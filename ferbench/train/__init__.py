"""Training: recipes (recipe.py), data (data.py), the loop (loop.py), evaluation and metrics,
and the registries a recipe names: losses (losses.py, losses_metric.py: focal, center, island),
optimisers and schedules (optim.py, sam.py), samplers and augmentations (data.py, augment_extra.py);
report 001's hard-sample phase (hard_samples.py)."""
