-- Views over the leaderboard tables (schema.sql). An entry is one recipe content hash on one manifest;
-- a group is the entries scored on exactly the same (repeat, fold, seed) runs (table groups). Every
-- per-entry figure below counts only the runs of the entry's group (table group_runs).

-- what each entry is: its names, model facts and where and when it ran
CREATE VIEW entries AS
SELECT r.manifest_hash, r.recipe_hash, left(r.recipe_hash, 8) AS short_hash,
       (SELECT list(DISTINCT o.recipe_name ORDER BY o.recipe_name) FROM runs x JOIN run_recipes o USING (run_id)
        WHERE x.manifest_hash = r.manifest_hash AND x.recipe_hash = r.recipe_hash) AS names,
       any_value(r.model) AS model, any_value(r.modality) AS modality, any_value(r.input_size) AS input_size,
       any_value(r.channels) AS channels, bool_or(r.pretrained) AS pretrained,
       max(m.params) AS params, max(m.gflops) AS gflops, any_value(m.pretrained_source) AS pretrained_source,
       list(DISTINCT m.checkpoint_sha256) FILTER (WHERE m.checkpoint_sha256 IS NOT NULL) AS checkpoint_sha256,
       list(DISTINCT e.device_name) FILTER (WHERE e.device_name IS NOT NULL) AS devices,
       min(r.created_at) AS first_run, max(r.created_at) AS last_run, sum(e.wall_s) AS wall_s,
       list(DISTINCT e.ferbench_version) FILTER (WHERE e.ferbench_version IS NOT NULL) AS ferbench_versions,
       list(DISTINCT e.git_sha) FILTER (WHERE e.git_sha IS NOT NULL) AS git_shas,
       count(*) AS runs_ingested
FROM runs r LEFT JOIN run_models m USING (run_id) LEFT JOIN environment e USING (run_id)
GROUP BY r.manifest_hash, r.recipe_hash;

-- every name an entry ran under, with its recipe file and the override diff against it
CREATE VIEW entry_names AS
SELECT DISTINCT r.manifest_hash, r.recipe_hash, o.recipe_name, o.recorded, o.recipe_file, o.located, o.overrides
FROM runs r JOIN run_recipes o USING (run_id);

-- does an entry rest on synthetic data (any of its datasets' cards says so)?
CREATE VIEW entry_data AS
SELECT gr.group_id, gr.recipe_hash, bool_or(d.synthetic) AS synthetic,
       string_agg(DISTINCT d.name, '+' ORDER BY d.name) AS datasets
FROM group_runs gr JOIN run_datasets USING (run_id) JOIN datasets d USING (fingerprint)
GROUP BY ALL;

-- the leaderboard: one row per entry, group and metric (baselines: baseline_scores)
CREATE VIEW leaderboard AS
SELECT g.protocol, g.manifest_hash, g.group_id, g.section, g.coverage, g.k_folds, g.total_folds,
       s.metric, s.rank, s.tier, s.position,
       s.recipe_hash, e.short_hash, e.names, array_to_string(e.names, ' = ') AS recipe_name,
       e.model, e.modality, e.pretrained, e.pretrained_source, e.params, e.gflops,
       s.mean, s.std, s.n_runs, s.n_folds, s.n_seeds,
       s.ci_lo, s.ci_hi, s.ci_level, s.ci_unit, s.clusters,
       s.diff_best, s.diff_best_lo, s.diff_best_hi, s.tied_with_best,
       s.best_baseline, s.diff_baseline, s.diff_baseline_lo, s.diff_baseline_hi, s.vs_baseline,
       d.synthetic, d.datasets, p.leakage_verdict
FROM standings s
JOIN groups g USING (group_id)
JOIN entries e ON e.manifest_hash = g.manifest_hash AND e.recipe_hash = s.recipe_hash
LEFT JOIN entry_data d ON d.group_id = s.group_id AND d.recipe_hash = s.recipe_hash
LEFT JOIN protocols p ON p.manifest_hash = g.manifest_hash
WHERE s.system = 'model';

-- the majority-class and class-prior baselines of each group, on exactly the group's runs
CREATE VIEW baseline_scores AS
SELECT g.protocol, g.manifest_hash, g.group_id, g.section, s.system, s.metric, s.mean, s.std,
       s.n_folds, s.n_runs, s.ci_lo, s.ci_hi
FROM standings s JOIN groups g USING (group_id)
WHERE s.system <> 'model';

-- every counted run: the model's test metric beside the two baselines of the same fold
CREATE VIEW per_fold AS
SELECT g.group_id, g.section, g.protocol, g.manifest_hash, gr.recipe_hash, r.recipe_name, r.run_id,
       r.repeat_idx, r.fold, r.seed, m.metric, m.value AS model, mj.value AS majority, pr.value AS prior
FROM group_runs gr
JOIN groups g USING (group_id)
JOIN runs r USING (run_id)
JOIN fold_metrics m ON m.run_id = r.run_id AND m.system = 'model' AND m.role = 'test'
LEFT JOIN fold_metrics mj ON mj.run_id = r.run_id AND mj.system = 'majority' AND mj.role = 'test' AND mj.metric = m.metric
LEFT JOIN fold_metrics pr ON pr.run_id = r.run_id AND pr.system = 'prior' AND pr.role = 'test' AND pr.metric = m.metric;

-- per-class precision / recall / F1 of each entry: mean over its counted runs (test role)
CREATE VIEW per_class AS
SELECT gr.group_id, g.manifest_hash, gr.recipe_hash, c.class_idx, c.class,
       avg(c.precision) AS precision, avg(c.recall) AS recall, avg(c.f1) AS f1,
       sum(c.support) AS support, count(*) AS n_runs
FROM group_runs gr JOIN groups g USING (group_id)
JOIN class_metrics c ON c.run_id = gr.run_id AND c.role = 'test'
GROUP BY ALL;

-- per source dataset of a merged test set: each entry's metrics, mean ± std over its counted runs
CREATE VIEW per_source AS
SELECT gr.group_id, g.manifest_hash, gr.recipe_hash, s.dataset, s.metric,
       avg(s.value) AS mean, stddev_samp(s.value) AS std, count(*) AS n_runs, sum(s.n) AS n
FROM group_runs gr JOIN groups g USING (group_id)
JOIN source_metrics s ON s.run_id = gr.run_id AND s.role = 'test'
GROUP BY ALL;

-- each entry's test confusion matrix summed over its counted runs, with row percentages
CREATE VIEW confusion_matrix AS
WITH cells AS (
    SELECT gr.group_id, g.manifest_hash, gr.recipe_hash, c.true_label, c.pred_label, sum(c.n) AS n
    FROM group_runs gr JOIN groups g USING (group_id)
    JOIN confusion c ON c.run_id = gr.run_id AND c.role = 'test'
    GROUP BY ALL
)
SELECT *, CASE WHEN sum(n) OVER w > 0 THEN 100.0 * n / sum(n) OVER w END AS row_pct
FROM cells
WINDOW w AS (PARTITION BY group_id, recipe_hash, true_label);

-- reported vs reproduced: each published figure of an entry's recipe(s) beside the measured mean of
-- the same metric and role over the entry's counted runs (scores in percent; delta = measured - reported); a
-- per-class figure (metric 'precision:<class>', 'recall:<class>', 'f1:<class>') is measured from
-- class_metrics; 'accuracy_without:<class>' (the model's argmax over all classes, scored on the test
-- rows of the other classes) from the confusion matrix; model figures ('params_m',
-- 'trainable_params_m': millions of parameters; 'gmacs': 10^9 multiply-accumulates of one forward
-- pass, = GFLOPs / 2) from run_models, in their own units (not percent)
CREATE VIEW reported_vs_measured AS
WITH without AS (
    SELECT p.run_id, p.metric,
           sum(CASE WHEN c.true_label = c.pred_label THEN c.n ELSE 0 END) / nullif(sum(c.n), 0) AS value
    FROM (SELECT DISTINCT run_id, role, metric FROM reported WHERE metric LIKE 'accuracy\_without:%' ESCAPE '\') p
    JOIN confusion c ON c.run_id = p.run_id AND c.role = p.role
    WHERE c.true_label <> substr(p.metric, strpos(p.metric, ':') + 1)
    GROUP BY p.run_id, p.metric
), figures AS (
    SELECT gr.group_id, g.manifest_hash, gr.recipe_hash, p.*,
           CASE split_part(p.metric, ':', 1)
               WHEN 'precision' THEN 100 * c.precision WHEN 'recall' THEN 100 * c.recall WHEN 'f1' THEN 100 * c.f1
               WHEN 'accuracy_without' THEN 100 * w.value
               WHEN 'params_m' THEN rm.params / 1e6 WHEN 'trainable_params_m' THEN rm.trainable_params / 1e6
               WHEN 'gmacs' THEN rm.gflops / 2
               ELSE 100 * m.value END AS measured_value
    FROM group_runs gr JOIN groups g USING (group_id)
    JOIN reported p USING (run_id)
    LEFT JOIN fold_metrics m ON m.run_id = p.run_id AND m.system = 'model' AND m.role = p.role AND m.metric = p.metric
    LEFT JOIN class_metrics c ON c.run_id = p.run_id AND c.role = p.role AND p.metric LIKE '%:%'
                             AND c.class = substr(p.metric, strpos(p.metric, ':') + 1)
    LEFT JOIN without w ON w.run_id = p.run_id AND w.metric = p.metric
    LEFT JOIN run_models rm ON rm.run_id = p.run_id
)
SELECT group_id, manifest_hash, recipe_hash, recipe_name, metric, role,
       any_value(value) AS reported, avg(measured_value) AS measured,
       avg(measured_value) - any_value(value) AS delta, count(measured_value) AS n_runs,
       any_value(source) AS source, any_value(notes) AS notes
FROM figures
GROUP BY group_id, manifest_hash, recipe_hash, recipe_name, metric, role;
