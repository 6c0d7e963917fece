"""The per-run rows of the board's tables (schema.sql), from the collected runs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..metrics import SCALARS, confusion, per_class, report
from .collect import Run

TABLES = ("runs", "run_recipes", "run_models", "reported", "fold_metrics", "class_metrics", "source_metrics",
          "confusion", "predictions", "datasets", "run_datasets", "protocols", "environment")
ENV_KEYS = ("git_sha", "git_dirty", "ferbench_version", "python", "platform", "device", "device_name", "driver", "cuda",
            "precision", "world_size", "wall_s", "train_samples_per_s")
MODEL_KEYS = ("params", "trainable_params", "gflops", "flops_input", "pretrained_source", "checkpoint", "checkpoint_sha256")


def rows(runs: list[Run]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    datasets: dict[str, dict[str, Any]] = {}
    protocols: dict[str, dict[str, Any]] = {}
    for run in runs:
        rec = run.record
        rid, m, p, rc = rec.run_id, rec.metrics, rec.protocol, rec.recipe
        sel, n = rec.selection, m["n"]
        out["runs"].append({
            "run_id": rid, "run_name": rec.run_name, "run_dir": str(rec.run_dir), "created_at": rec.created_at,
            "recipe_name": rc["name"], "recipe_hash": rc["hash"], "model": rc["model"], "modality": rc["modality"],
            "input_size": rc["input_size"], "channels": rc["channels"], "pretrained": rc["pretrained"],
            "protocol": p["name"], "manifest_hash": rec.manifest_hash, "repeat_idx": rec.repeat,
            "fold": rec.fold, "seed": rec.seed, "code_version": rec.code_version,
            "n_train": n.get("train"), "n_val": n.get("val"), "n_test": n.get("test"),
            "selection": sel["rule"], "selected_epoch": sel["epoch"], "epochs_ran": sel["epochs_ran"],
            "stopped_early": sel["stopped_early"], "ci_resamples": rc["eval"]["bootstrap"], "ci_level": rc["eval"]["ci"],
        })
        names: dict[str, Any] = {}
        for found in (rec, *run.aliases):  # the names the job was found under
            names.setdefault(found.recipe["name"], found)
        for name, found in names.items():
            out["run_recipes"].append(_origin(rid, name, found.recipe))
            out["reported"] += _reported(rid, name, found)
        if rec.model:
            out["run_models"].append({"run_id": rid, **{k: rec.model.get(k) for k in MODEL_KEYS}})
        systems = [("model", role, m[role]) for role in ("test", "val") if m.get(role)]
        systems += [(name, "test", b) for name, b in m["baselines"].items()]
        for system, role, scores in systems:
            out["fold_metrics"] += [{"run_id": rid, "system": system, "role": role, "metric": k, "value": scores[k]}
                                    for k in SCALARS if isinstance(scores.get(k), (int, float))]
        classes = rec.classes
        for role in ("test", "val"):
            if m.get(role) and m[role].get("confusion"):
                out["class_metrics"] += [{"run_id": rid, "role": role, "class_idx": i, **c}
                                         for i, c in enumerate(per_class(np.asarray(m[role]["confusion"]), classes))]
        out["source_metrics"] += _per_source(run, classes)
        for i, row in enumerate(m["test"]["confusion"]):
            out["confusion"] += [{"run_id": rid, "role": "test", "true_label": classes[i], "pred_label": classes[j],
                                  "n": int(c)} for j, c in enumerate(row)]
        out["predictions"].append({"run_id": rid, "path": str(rec.predictions_path)})
        for d in rec.datasets:
            datasets[d["fingerprint"]] = {"fingerprint": d["fingerprint"], "name": d["name"], "title": d.get("title"),
                                          "synthetic": bool(d.get("synthetic")), "num_rows": d.get("num_rows")}
            out["run_datasets"].append({"run_id": rid, "fingerprint": d["fingerprint"]})
        leak = p.get("leakage") or {}
        protocols[p["manifest_hash"]] = {
            "manifest_hash": p["manifest_hash"], "protocol": p["name"], "version": p.get("version"), "seed": p.get("seed"),
            "params": json.dumps(p.get("params"), sort_keys=True), "n_folds": p["n_folds"], "n_repeats": p["n_repeats"],
            "classes": p["classes"], "leakage_verdict": leak.get("verdict"), "subject_overlap": leak.get("subject_overlap"),
            "exact_duplicates": leak.get("exact_duplicates"), "near_duplicates": leak.get("near_duplicates"),
        }
        env = rec.environment
        version = env.get("ferbench_version") or (env.get("packages") or {}).get("ferbench")
        out["environment"].append({**{k: env.get(k) for k in ENV_KEYS}, "ferbench_version": version, "run_id": rid,
                                   "packages": json.dumps(env.get("packages"), sort_keys=True)})
    out["datasets"] = list(datasets.values())
    out["protocols"] = list(protocols.values())
    return out


def _origin(rid: str, name: str, rc: dict[str, Any]) -> dict[str, Any]:
    recorded = "overrides" in rc or "file" in rc
    return {"run_id": rid, "recipe_name": name, "recorded": recorded, "recipe_file": rc.get("file"),
            "located": rc.get("located"),
            "overrides": None if rc.get("overrides") is None else json.dumps(rc["overrides"], sort_keys=True, default=str)}


def _reported(rid: str, name: str, rec) -> list[dict[str, Any]]:
    out, seen = [], set()
    for r in rec.reported:
        key = (r.get("metric") or "accuracy", r.get("role") or "test")
        if not isinstance(r.get("value"), (int, float)) or key in seen:
            continue
        seen.add(key)
        out.append({"run_id": rid, "recipe_name": name, "value": float(r["value"]), "metric": key[0], "role": key[1],
                    "source": r.get("source"), "notes": r.get("notes")})
    return out


def _per_source(run: Run, classes: list[str]) -> list[dict[str, Any]]:
    """The model's test metrics on each source dataset of the run's test set."""
    out = []
    for name in sorted(set(run.dataset.tolist()), key=str):
        mask = run.dataset == name
        scores = report(confusion(run.truth[mask], run.pred[mask], len(classes)), classes)
        out += [{"run_id": run.record.run_id, "role": "test", "dataset": str(name), "metric": k, "value": scores[k],
                 "n": int(mask.sum())} for k in SCALARS]
    return out
