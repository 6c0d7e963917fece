"""The Hugging Face dataset card (``README.md``) of a converted dataset directory.

YAML front matter in the Hub's format: ``configs`` points the default config's one split at
``data/*.parquet``, and ``dataset_info.features`` types every column (``class_label`` with the
canonical emotion names for every label column, ``image`` for RGB and depth), so
``datasets.load_dataset(OUT)`` needs no ferbench code. The body says what the data is, how many
rows each class and split has, what the conversion skipped and how it was built.

The split is called ``train`` because that is the Hub's name for a dataset's only split; the
dataset's own split is the ``source_split`` column, and ferbench protocols decide train/test.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import yaml

from . import __version__
from .schema import EMOTIONS, hf_features


def features_yaml(schema: pa.Schema) -> list[dict[str, Any]]:
    """The ``dataset_info.features`` list of a schema, in the Hub's YAML form."""
    return [{"name": name, **_yaml_type(feature)} for name, feature in hf_features(schema).items()]


def _yaml_type(feature: Any) -> dict[str, Any]:
    """One feature (``datasets`` JSON form) as the YAML mapping the Hub writes for it."""
    if isinstance(feature, dict) and "_type" not in feature:
        return {"struct": [{"name": k, **_yaml_type(v)} for k, v in feature.items()]}
    kind = feature["_type"]
    if kind == "Value":
        return {"dtype": feature["dtype"]}
    if kind == "Image":
        return {"dtype": "image"}
    if kind == "ClassLabel":
        return {"dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(feature["names"])}}}}
    if kind == "List":
        inner = _yaml_type(feature["feature"])
        if "struct" in inner:
            return {"list": inner["struct"]}
        if "dtype" in inner and isinstance(inner["dtype"], str):
            return {"list": inner["dtype"]}
        return {"list": inner}
    raise ValueError(f"no YAML form for feature {feature!r}")


def render_readme(fields: dict[str, Any], schema: pa.Schema, report: dict[str, Any]) -> str:
    """The whole ``README.md`` from the ferbench card's fields (``DatasetCard.to_json()``), the
    schema and the build report: front matter, then the description."""
    card = SimpleNamespace(**fields)
    front = {
        "pretty_name": card.title,
        "license": "other",
        "license_name": _licence_name(card),
        "task_categories": ["image-classification"],
        "tags": ["facial-expression-recognition", "ferbench"] + (["synthetic"] if card.synthetic else []),
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}],
        "dataset_info": {
            "features": features_yaml(schema),
            "splits": [{"name": "train", "num_bytes": sum(card.shard_bytes), "num_examples": card.num_rows}],
        },
    }
    if card.license:
        front["license_details"] = card.license
    if card.homepage:
        front["license_link"] = card.homepage
    body = [f"# {card.title}", ""]
    if card.synthetic:
        body += ["**Synthetic data** written by `ferbench synth`: no real person is in it.", ""]
    body += [card.description or f"The `{card.name}` dataset in the ferbench canonical schema.", ""]
    body += _facts(card) + _counts_table(card) + _faults(report) + _loading(card) + _citation(card)
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n\n" + "\n".join(body) + "\n"


def _licence_name(card: SimpleNamespace) -> str:
    return f"{card.name}-licence"


def _facts(card: SimpleNamespace) -> list[str]:
    rows = [
        ("dataset", f"`{card.name}` {card.version}".strip()),
        ("raw layout", card.layout or "—"),
        ("rows", f"{card.num_rows:,}"),
        ("rows without an emotion label", f"{card.null_labels:,}"),
        ("subjects", f"{card.counts.get('subjects', 0):,}"),
        ("fingerprint", f"`{card.fingerprint}`"),
        ("built by", f"ferbench {__version__}"),
    ]
    if card.options:
        rows.append(("converter options", ", ".join(f"`{k}={v}`" for k, v in sorted(card.options.items()))))
    if card.params:
        rows.append(("parameters", ", ".join(f"`{k}={v}`" for k, v in sorted(card.params.items()))))
    if card.sources:
        rows.append(("merged from", ", ".join(f"`{s['name']}` (`{s['fingerprint']}`)" for s in card.sources)))
    if card.homepage:
        rows.append(("request the data", card.homepage))
    if card.license:
        rows.append(("licence", card.license))
    return ["## Facts", "", "| | |", "| --- | --- |"] + [f"| {k} | {_cell(v)} |" for k, v in rows] + [""]


def _counts_table(card: SimpleNamespace) -> list[str]:
    per_split = card.counts.get("per_split_label", {})
    if not per_split:
        return []
    splits = list(per_split)
    labels = sorted({k for c in per_split.values() for k in c}, key=lambda k: (k == "None", int(k) if k.isdigit() else 99))
    head = ["| class | " + " | ".join(_cell(s) for s in splits) + " | total |", "| --- |" + " ---: |" * (len(splits) + 1)]
    lines = []
    for label in labels:
        counts = [per_split[s].get(label, 0) for s in splits]
        name = EMOTIONS[int(label)] if label.isdigit() else "(no label)"
        lines.append(f"| {name} | " + " | ".join(f"{n:,}" for n in counts) + f" | {sum(counts):,} |")
    return ["## Rows per class and source split", "", *head, *lines, ""]


def _faults(report: dict[str, Any]) -> list[str]:
    kinds = report.get("fault_kinds") or {}
    if not kinds:
        return ["## Faults", "", "The conversion reported no fault.", ""]
    lines = [f"| {_cell(k)} | {n:,} |" for k, n in sorted(kinds.items())]
    return [
        "## Faults",
        "",
        "Samples the conversion skipped, by kind (each with file and reason in `build_report.json`):",
        "",
        "| kind | samples |",
        "| --- | ---: |",
        *lines,
        "",
    ]


def _loading(card: SimpleNamespace) -> list[str]:
    return [
        "## Loading",
        "",
        "```python",
        "import datasets",
        'ds = datasets.load_dataset("path/to/this/directory", split="train")',
        'ds.features["label"].int2str(ds[0]["label"])',
        "```",
        "",
        "The Parquet shards under `data/` read as they are with pyarrow, pandas and DuckDB. "
        "`label` is the canonical emotion (null where the dataset gives none); `label_raw` keeps the "
        "dataset's own label and `source_split` its own split. `ferbench.json` is ferbench's card "
        "and `build_report.json` lists every fault.",
        "",
    ]


def _citation(card: SimpleNamespace) -> list[str]:
    if not card.citation:
        return []
    return ["## Citation", "", "```bibtex", card.citation.strip(), "```", ""]


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
