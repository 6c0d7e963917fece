"""One (repeat, fold) of a protocol manifest as a standard dataset: in memory, or written out.

``load_fold`` joins the manifest's rows of one (repeat, fold) with the images of its converted
datasets and returns a ``datasets.DatasetDict`` with the splits ``train``, ``validation`` (left out
when the protocol has no validation role) and ``test``. Each split has the columns

============== ======================= =====================================================
column         feature                 meaning
============== ======================= =====================================================
sample_id      Value(string)           the sample's ferbench id (unique)
dataset        Value(string)           the converter the sample came from
subject_id     Value(string)           ``<dataset>:<raw id>``, None where unknown
image          Image                   the RGB/grey image (the dataset's ``rgb``), as stored
depth          Image                   the 16-bit depth PNG; only where a dataset has depth
label          ClassLabel(protocol)    the protocol's class index, names in its class order
label_canonical ClassLabel(EMOTIONS)   the canonical 8-class index (``ferbench.schema``)
============== ======================= =====================================================

rows in the manifest's order (sorted by sample_id). ``label`` is the index the protocol assigns,
never the canonical one: for ``bu3dfe-p1`` (happiness … anger) ``label`` 0 is happiness.

Before anything is read, the manifest goes through ``ferbench.protocols.load_manifest``: its rows
must hash to the content hash stored in it, every dataset directory's fingerprint must be the one
the manifest was made from (``data_dirs`` are matched by card name; others are opened at the path
the manifest recorded), each row's label, subject and dataset must be its dataset's, and the
leakage verdict must be sealed to these rows (else it is computed again). Reading the images
re-checks the datasets' non-image columns against their cards.

``export_fold`` writes the same fold, atomically (a temporary sibling renamed into place), as

* ``hf``: a standard dataset directory, ``data/{train,validation,test}-NNNNN-of-NNNNN.parquet``
  plus a ``README.md`` whose YAML names one config with a split per file pattern and types every
  column (the label columns as ``class_label``), so ``datasets.load_dataset(DIR)``, timm's
  ``hfds/DIR`` and pandas / DuckDB / pyarrow read it with no ferbench code;
* ``imagefolder``: ``{train,validation,test}/<NN>_<class>/<sample>.png|jpg`` (the original bytes
  for PNG and JPEG, anything else re-encoded losslessly to PNG), for torchvision's ``ImageFolder``,
  timm's folder datasets and ``datasets.load_dataset("imagefolder", data_dir=DIR)``. Class folders
  carry the protocol index as a two-digit prefix so that readers that sort folder names (all of
  them) give the protocol's indices. ``samples.csv`` at the top lists every file with its split,
  sample_id, dataset, subject_id and both labels (it sits outside the split folders, where a
  ``metadata.csv`` would stop ``imagefolder`` from naming the classes). Depth is not exported in
  this format.

Both write ``ferbench_fold.json``: protocol, version, seed, params, repeat, fold, classes, the
manifest's content hash, the datasets' fingerprints, the leakage verdict and the per-split counts.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from .converted import ConvertedDataset, staged
from .errors import FerbenchError
from .protocols.manifest import Manifest
from .schema import EMOTIONS, IMAGE_TYPE

if TYPE_CHECKING:
    import datasets

#: Manifest role → split name (the Hugging Face names, which timm's split search also knows).
SPLITS: dict[str, str] = {"train": "train", "val": "validation", "test": "test"}
FORMATS = ("hf", "imagefolder")
FOLD_FILE = "ferbench_fold.json"
#: The ``imagefolder`` export's list of files: file, split, sample_id, dataset, subject_id, label, label_canonical.
SAMPLES_FILE = "samples.csv"
#: A Parquet file of an ``hf`` export holds about this many image bytes at most.
SHARD_BYTES = 256 * 2**20


class FoldError(FerbenchError):
    """A fold cannot be loaded or exported (bad manifest, dataset changed, fold out of range)."""


# -- the manifest and its datasets ----------------------------------------------------------------
def open_manifest(manifest: Manifest | str | Path,
                  data_dirs: Sequence[str | Path] | None = None) -> tuple[Manifest, list[ConvertedDataset]]:
    """A manifest checked for use, and its opened datasets (``ferbench.protocols.load_manifest``:
    content hash, fingerprints, rows against the datasets, leakage verdict sealed or checked again).
    A ``Manifest`` object (e.g. fresh from ``materialise``) goes through the same checks."""
    from .protocols import check_rows, load_manifest, open_sources, trust_leakage
    from .protocols.manifest import check_content_hash

    dirs = list(data_dirs or ())
    if isinstance(manifest, Manifest):
        where = f"(in memory, protocol {manifest.meta.get('protocol')})"
        check_content_hash(manifest, where)
        sources = open_sources(manifest.meta, dirs, where)
        check_rows(manifest, sources, where)
        trust_leakage(manifest, sources, where)
        return manifest, sources
    checked = load_manifest(manifest, dirs)
    return checked, open_sources(checked.meta, dirs, manifest)


# -- the fold as Arrow tables ---------------------------------------------------------------------
@dataclass
class FoldTables:
    """One (repeat, fold): a table per split (columns as in the module doc) and what it came from."""

    manifest: Manifest
    repeat: int
    fold: int
    splits: dict[str, pa.Table]
    sources: list[ConvertedDataset]

    @property
    def classes(self) -> list[str]:
        return list(self.manifest.meta["classes"])

    @property
    def has_depth(self) -> bool:
        return "depth" in next(iter(self.splits.values())).column_names

    def features(self) -> "datasets.Features":
        import datasets

        cols: dict[str, Any] = {
            "sample_id": datasets.Value("string"),
            "dataset": datasets.Value("string"),
            "subject_id": datasets.Value("string"),
            "image": datasets.Image(),
        }
        if self.has_depth:
            cols["depth"] = datasets.Image()
        cols["label"] = datasets.ClassLabel(names=self.classes)
        cols["label_canonical"] = datasets.ClassLabel(names=list(EMOTIONS))
        return datasets.Features(cols)

    def typed(self, split: str) -> pa.Table:
        """The split's table cast to the Hugging Face schema (``huggingface`` metadata included)."""
        return self.splits[split].cast(self.features().arrow_schema)

    def fingerprint(self, split: str) -> str:
        """A content-derived id of one split: manifest hash, datasets, (repeat, fold), split, classes."""
        key = {
            "manifest": self.manifest.content_hash,
            "datasets": sorted(d.card.fingerprint for d in self.sources),
            "repeat": self.repeat,
            "fold": self.fold,
            "split": split,
            "columns": self.splits[split].column_names,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]

    def describe(self) -> dict[str, Any]:
        """The provenance record (``ferbench_fold.json``)."""
        meta = self.manifest.meta
        counts = {}
        for split, t in self.splits.items():
            labels = t.column("label").to_numpy(zero_copy_only=False).astype(np.int64)
            per = np.bincount(labels, minlength=len(self.classes))
            counts[split] = {"rows": t.num_rows, "per_class": dict(zip(self.classes, per.tolist()))}
        return {
            "protocol": meta["protocol"],
            "version": meta.get("version"),
            "seed": meta.get("seed"),
            "params": meta.get("params", {}),
            "repeat": self.repeat,
            "fold": self.fold,
            "classes": self.classes,
            "class_canonical": meta.get("class_canonical"),
            "manifest_hash": self.manifest.content_hash,
            "datasets": [
                {"name": d.card.name, "title": d.card.title, "fingerprint": d.card.fingerprint,
                 "synthetic": d.card.synthetic, "license": d.card.license, "homepage": d.card.homepage}
                for d in self.sources
            ],
            "leakage": (meta.get("leakage") or {}).get("verdict"),
            "splits": counts,
            "ferbench_version": __version__,
        }


def fold_tables(manifest: Manifest | str | Path, fold: int, repeat: int = 0,
                data_dirs: Sequence[str | Path] | None = None) -> FoldTables:
    """The splits of one (repeat, fold) joined with their images (checks as in the module doc)."""
    m, sources = open_manifest(manifest, data_dirs)
    meta = m.meta
    for what, value, n in (("repeat", repeat, meta["n_repeats"]), ("fold", fold, meta["n_folds"])):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 0 <= value < n:
            raise FoldError(f"{what} {value!r} does not exist: protocol {meta['protocol']} has {what}s 0..{n - 1}")
    roles = m.select(int(repeat), int(fold))
    ids = pa.chunked_array([t.column("sample_id") for t in roles.values()]).combine_chunks()
    images = _images(sources, ids)
    splits = {}
    for role, split in SPLITS.items():
        rows = roles.get(role)
        if rows is None or not rows.num_rows:
            continue
        splits[split] = _split_table(rows, images)
    return FoldTables(m, int(repeat), int(fold), splits, sources)


def _images(sources: list[ConvertedDataset], ids: pa.Array) -> pa.Table:
    """sample_id, image and (where any dataset has it) depth of the samples ``ids``, from every source."""
    parts = []
    for data in sources:
        present = set(data.column_names())
        cols = ["sample_id"] + [c for c in ("rgb", "depth") if c in present]
        t = data.read(cols)
        t = t.filter(pc.is_in(t.column("sample_id"), value_set=ids))
        n = t.num_rows
        parts.append(pa.table({
            "sample_id": t.column("sample_id"),
            "image": t.column("rgb") if "rgb" in present else pa.nulls(n, IMAGE_TYPE),
            "depth": t.column("depth") if "depth" in present else pa.nulls(n, IMAGE_TYPE),
        }))
    joined = pa.concat_tables(parts).combine_chunks()
    found = joined.column("sample_id")
    if len(pc.unique(found)) != joined.num_rows:
        counts = pc.value_counts(found)
        twice = [v["values"] for v in counts.to_pylist() if v["counts"] > 1]
        raise FoldError(f"{len(twice)} sample(s) appear in more than one dataset directory, e.g. {twice[:3]}")
    missing = pc.invert(pc.is_in(ids, value_set=found))
    if pc.any(missing).as_py():
        lost = ids.filter(missing).to_pylist()
        raise FoldError(f"{len(lost)} manifest sample(s) are not in the dataset directories, e.g. {lost[:3]}")
    if not pc.any(pc.is_valid(joined.column("depth"))).as_py():
        joined = joined.drop_columns(["depth"])
    if not pc.any(pc.is_valid(joined.column("image"))).as_py() and "depth" not in joined.column_names:
        raise FoldError("the fold's samples have neither an RGB nor a depth image")
    return joined


def _split_table(rows: pa.Table, images: pa.Table) -> pa.Table:
    at = pc.index_in(rows.column("sample_id"), value_set=images.column("sample_id"))
    picked = images.take(at)
    out = {
        "sample_id": rows.column("sample_id"),
        "dataset": rows.column("dataset"),
        "subject_id": rows.column("subject_id"),
        "image": picked.column("image"),
    }
    if "depth" in images.column_names:
        out["depth"] = picked.column("depth")
    out["label"] = rows.column("label")
    out["label_canonical"] = rows.column("label_canonical")
    return pa.table(out)


# -- load -----------------------------------------------------------------------------------------
def load_fold(manifest: Manifest | str | Path, fold: int, repeat: int = 0,
              data_dirs: Sequence[str | Path] | None = None) -> "datasets.DatasetDict":
    """One (repeat, fold) of a manifest as a ``datasets.DatasetDict`` (train / validation / test)."""
    import datasets
    from datasets.table import InMemoryTable

    tables = fold_tables(manifest, fold, repeat, data_dirs)
    meta = tables.manifest.meta
    out = datasets.DatasetDict()
    for split in tables.splits:
        info = datasets.DatasetInfo(
            description=f"ferbench protocol {meta['protocol']} v{meta.get('version')} (seed {meta.get('seed')}), "
                        f"repeat {tables.repeat}, fold {tables.fold}, {split}; manifest {tables.manifest.content_hash}",
            features=tables.features(),
            dataset_name=f"ferbench-{meta['protocol']}",
            config_name=f"r{tables.repeat}-f{tables.fold}",
        )
        out[split] = datasets.Dataset(InMemoryTable(tables.typed(split)), info=info, split=datasets.NamedSplit(split),
                                      fingerprint=tables.fingerprint(split))
    return out


# -- export ---------------------------------------------------------------------------------------
def export_fold(manifest: Manifest | str | Path, out: str | Path, fold: int, repeat: int = 0, *,
                format: str = "hf", data_dirs: Sequence[str | Path] | None = None,
                overwrite: bool = False) -> Path:
    """Write one (repeat, fold) to ``out`` as an ``hf`` dataset directory or an ``imagefolder`` tree."""
    if format not in FORMATS:
        raise FoldError(f"format {format!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FoldError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    tables = fold_tables(manifest, fold, repeat, data_dirs)
    with staged(out) as tmp:
        if format == "hf":
            _write_hf(tables, tmp)
        else:
            (tmp / "data").rmdir()
            _write_imagefolder(tables, tmp)
        record = tables.describe() | {"format": format}
        (tmp / FOLD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return out


def _write_hf(tables: FoldTables, root: Path) -> None:
    import yaml

    splits_info = []
    for split in tables.splits:
        table = tables.typed(split)
        nbytes = _image_bytes(table)
        n = max(1, -(-nbytes // SHARD_BYTES))
        bounds = np.linspace(0, table.num_rows, n + 1).astype(int)
        for i in range(n):
            part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
            pq.write_table(part, root / "data" / f"{split}-{i:05d}-of-{n:05d}.parquet", compression="zstd")
        splits_info.append({"name": split, "num_bytes": int(table.nbytes), "num_examples": table.num_rows})
    front = {
        "pretty_name": _title(tables),
        "license": "other",
        "license_name": "source-dataset-licences",
        "task_categories": ["image-classification"],
        "tags": ["facial-expression-recognition", "ferbench"] + (["synthetic"] if any(d.card.synthetic for d in tables.sources) else []),
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in tables.splits]}],
        "dataset_info": {"features": _features_yaml(tables), "splits": splits_info},
    }
    text = "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n\n" + _readme_body(tables)
    (root / "README.md").write_text(text)


def _features_yaml(tables: FoldTables) -> list[dict[str, Any]]:
    """The card's feature list: ferbench's ``features_yaml`` for the plain and image columns, the
    two label columns as class labels with their own names."""
    from .dataset_card import _yaml_type, features_yaml

    schema = tables.splits[next(iter(tables.splits))].schema
    labels = {"label": tables.classes, "label_canonical": list(EMOTIONS)}
    out = []
    for item in features_yaml(schema):
        if item["name"] in labels:
            item = {"name": item["name"], **_yaml_type({"_type": "ClassLabel", "names": labels[item["name"]]})}
        out.append(item)
    return out


def _title(tables: FoldTables) -> str:
    return f"ferbench {tables.manifest.meta['protocol']}, repeat {tables.repeat}, fold {tables.fold}"


def _readme_body(tables: FoldTables) -> str:
    d = tables.describe()
    lines = [
        f"# {_title(tables)}", "",
        f"One fold of the ferbench protocol `{d['protocol']}` (version {d['version']}, seed {d['seed']}), exported by "
        f"ferbench {__version__}. The licence of each source dataset applies to its rows.", "",
        "| | |", "| --- | --- |",
        f"| manifest content hash | `{d['manifest_hash']}` |",
        f"| classes (label order) | {', '.join(d['classes'])} |",
        f"| leakage verdict | {d['leakage']} |",
    ]
    lines += [f"| dataset `{s['name']}` | fingerprint `{s['fingerprint']}`{' (synthetic)' if s['synthetic'] else ''} |" for s in d["datasets"]]
    lines += ["", "| split | rows | " + " | ".join(d["classes"]) + " |", "| --- | ---: |" + " ---: |" * len(d["classes"])]
    for split, c in d["splits"].items():
        lines.append(f"| {split} | {c['rows']:,} | " + " | ".join(f"{v:,}" for v in c["per_class"].values()) + " |")
    lines += [
        "", "## Loading", "", "```python", "import datasets",
        'fold = datasets.load_dataset("path/to/this/directory")',
        'fold["train"].features["label"].int2str(fold["train"][0]["label"])', "```", "",
        "`label` is the protocol's class index (names above, in this order); `label_canonical` the ferbench "
        "8-class index. `ferbench_fold.json` records where the fold came from.", "",
    ]
    return "\n".join(lines)


def _image_bytes(table: pa.Table) -> int:
    total = 0
    for name in ("image", "depth"):
        if name in table.column_names:
            b = pc.struct_field(table.column(name), "bytes")
            total += int(pc.sum(pc.binary_length(b)).as_py() or 0)
    return total


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def class_dirs(classes: Sequence[str]) -> list[str]:
    """Folder names whose sorted order is the protocol's class order: ``00_happiness``, ``01_sadness`` …"""
    width = max(2, len(str(len(classes) - 1)))
    return [f"{i:0{width}d}_{_UNSAFE.sub('_', c)}" for i, c in enumerate(classes)]


def _write_imagefolder(tables: FoldTables, root: Path) -> None:
    dirs = class_dirs(tables.classes)
    listing = []
    for split, table in tables.splits.items():
        base = root / split
        for d in dirs:
            (base / d).mkdir(parents=True)
        used: set[str] = set()
        images = pc.struct_field(table.column("image"), "bytes").to_pylist()
        cols = {c: table.column(c).to_pylist() for c in ("sample_id", "dataset", "subject_id", "label", "label_canonical")}
        for i, data in enumerate(images):
            sid, label = cols["sample_id"][i], cols["label"][i]
            if data is None:
                raise FoldError(f"sample {sid} has no RGB image, which the imagefolder format needs (export --format hf)")
            data, ext = _png_or_jpeg(data, sid)
            stem = _UNSAFE.sub("_", sid.replace("/", "__")).strip("._") or "sample"
            rel = f"{dirs[label]}/{stem}{ext}"
            if rel in used:
                rel = f"{dirs[label]}/{stem}-{hashlib.sha1(sid.encode()).hexdigest()[:8]}{ext}"
            used.add(rel)
            (base / rel).write_bytes(data)
            listing.append((f"{split}/{rel}", split, sid, cols["dataset"][i], cols["subject_id"][i] or "",
                            tables.classes[label], EMOTIONS[cols["label_canonical"][i]]))
    with open(root / SAMPLES_FILE, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("file", "split", "sample_id", "dataset", "subject_id", "label", "label_canonical"))
        writer.writerows(listing)


def _png_or_jpeg(data: bytes, sample_id: str) -> tuple[bytes, str]:
    """The bytes as they are if PNG or JPEG (the formats every folder reader takes), else as a PNG."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data, ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return data, ".jpg"
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            buf = io.BytesIO()
            (im if im.mode in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA") else im.convert("RGB")).save(buf, format="PNG")
    except Exception as exc:  # PIL raises many types for broken files
        raise FoldError(f"sample {sample_id}: undecodable image ({type(exc).__name__}: {exc})") from None
    return buf.getvalue(), ".png"
