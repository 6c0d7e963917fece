"""Synthetic data: the procedural expression world (``world``) and the helpers every dataset's
synthetic writer shares (``layouts``); each dataset folder holds its own writer."""

#: A raw root holding this file was written by ``ferbench synth``: its rows are marked synthetic.
SYNTHETIC_MARKER = "FERBENCH_SYNTHETIC"
