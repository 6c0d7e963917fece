-- Views over the leaderboard tables (schema.sql). An entry is one recipe on one manifest; its
-- runs are its repeats x folds x seeds. Entries are only ever compared within one manifest.

-- test metrics of each entry: mean and sample std over its runs
CREATE VIEW entry_scores AS
SELECT r.protocol, r.manifest_hash, r.recipe_hash,
       any_value(r.recipe_name) AS recipe_name, any_value(r.model) AS model,
       any_value(r.modality) AS modality, bool_or(r.pretrained) AS pretrained,
       m.metric, avg(m.value) AS mean,
       coalesce(stddev_samp(m.value), 0) AS std,
       count(*) AS n_runs,
       count(DISTINCT (r.repeat_idx, r.fold)) AS n_folds,
       count(DISTINCT r.seed) AS n_seeds
FROM runs r JOIN fold_metrics m USING (run_id)
WHERE m.system = 'model' AND m.role = 'test'
GROUP BY ALL;

-- the baselines of each manifest, once per (repeat, fold) whatever recipe ran it
CREATE VIEW baseline_scores AS
WITH per_fold AS (
    SELECT r.protocol, r.manifest_hash, r.repeat_idx, r.fold, m.system, m.metric, any_value(m.value) AS value
    FROM runs r JOIN fold_metrics m USING (run_id)
    WHERE m.system IN ('majority', 'prior') AND m.role = 'test'
    GROUP BY ALL
)
SELECT protocol, manifest_hash, system, metric, avg(value) AS mean,
       coalesce(stddev_samp(value), 0) AS std, count(*) AS n_folds
FROM per_fold GROUP BY ALL;

-- does an entry rest on synthetic data (any of its datasets' cards says so)?
CREATE VIEW entry_data AS
SELECT r.manifest_hash, r.recipe_hash, bool_or(d.synthetic) AS synthetic,
       string_agg(DISTINCT d.name, '+' ORDER BY d.name) AS datasets
FROM runs r JOIN run_datasets USING (run_id) JOIN datasets d USING (fingerprint)
GROUP BY ALL;

-- reported vs reproduced: each entry's published figure and the measured mean of the same metric and role
CREATE VIEW entry_reported AS
SELECT r.manifest_hash, r.recipe_hash,
       any_value(p.value) AS reported_value, any_value(p.metric) AS reported_metric,
       any_value(p.role) AS reported_role, any_value(p.source) AS reported_source,
       avg(m.value) AS reported_measured
FROM runs r JOIN reported p USING (run_id)
JOIN fold_metrics m ON m.run_id = r.run_id AND m.system = 'model' AND m.role = p.role AND m.metric = p.metric
GROUP BY r.manifest_hash, r.recipe_hash;

-- the leaderboard: models ranked per (protocol, manifest) on each metric, with CIs and flags
CREATE VIEW leaderboard AS
SELECT s.protocol, s.manifest_hash, s.metric,
       rank() OVER (PARTITION BY s.protocol, s.manifest_hash, s.metric ORDER BY s.mean DESC) AS rank,
       s.model, s.recipe_name, s.recipe_hash, s.modality, s.pretrained,
       s.mean, s.std, s.n_runs, s.n_folds, s.n_seeds,
       i.lo AS ci_lo, i.hi AS ci_hi, i.level AS ci_level, i.unit AS ci_unit,
       d.synthetic, d.datasets, p.leakage_verdict,
       e.reported_value, e.reported_metric, e.reported_role, e.reported_source, e.reported_measured
FROM entry_scores s
LEFT JOIN intervals i USING (manifest_hash, recipe_hash, metric)
LEFT JOIN entry_data d USING (manifest_hash, recipe_hash)
LEFT JOIN entry_reported e USING (manifest_hash, recipe_hash)
LEFT JOIN protocols p USING (manifest_hash);
