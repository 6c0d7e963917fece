"""Training: recipes (recipe.py), data (data.py), the loop (loop.py), evaluation and metrics,
and the registries a recipe names: losses (losses.py), optimisers and schedules (optim.py),
samplers and augmentations (data.py)."""
