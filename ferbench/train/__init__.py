"""Training: recipes (recipe.py); the data path, from the input specification (inputs.py) over the
sample store (store.py: a manifest joined with its converted datasets) to batches (loader.py); the
loop (loop.py) and evaluation (evaluate.py; the metrics are ``ferbench.metrics``); and the registries
a recipe names: losses (losses.py, losses_metric.py: focal, center, island), optimisers and
schedules (optim.py, sam.py), samplers (samplers.py) and augmentations (the augment package);
report 001's hard-sample phase (hard_samples.py)."""
