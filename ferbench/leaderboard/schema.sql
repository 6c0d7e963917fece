-- ferbench leaderboard tables. The database is rebuilt from the runs' result.json files by
-- `ferbench leaderboard` (never written by a run), so it can always be deleted and rebuilt.
-- Fractions are in [0, 1] unless a column says percent.

-- what this file is: key 'format' = 'ferbench-board/3' (a file without it is never overwritten),
-- and how the board was built (coverage asked for, bootstrap method and parameters)
CREATE TABLE board_info (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR
);

-- one row per ingested run: one (recipe, repeat, fold, seed) job; an entry is (manifest_hash, recipe_hash)
CREATE TABLE runs (
    run_id          VARCHAR PRIMARY KEY,   -- content key: recipe hash, manifest hash, fingerprints, code, repeat/fold/seed
    run_name        VARCHAR NOT NULL,
    run_dir         VARCHAR NOT NULL,
    created_at      TIMESTAMP,             -- UTC
    recipe_name     VARCHAR,
    recipe_hash     VARCHAR NOT NULL,      -- the recipe's content hash (the resolved recipe minus run-only fields)
    model           VARCHAR NOT NULL,
    modality        VARCHAR,
    input_size      INTEGER,
    channels        INTEGER,
    pretrained      BOOLEAN,
    protocol        VARCHAR NOT NULL,
    manifest_hash   VARCHAR NOT NULL,
    repeat_idx      INTEGER NOT NULL,
    fold            INTEGER NOT NULL,
    seed            BIGINT NOT NULL,
    code_version    VARCHAR NOT NULL,
    n_train         INTEGER,
    n_val           INTEGER,
    n_test          INTEGER,
    selection       VARCHAR,               -- "best" (on the val role), "on_test" (as published) or "last"
    selected_epoch  INTEGER,
    epochs_ran      INTEGER,
    stopped_early   BOOLEAN,
    ci_resamples    INTEGER,               -- the recipe's eval.bootstrap (the board uses board_info's)
    ci_level        DOUBLE
);

-- every name a run was found under (the same job can be found in two run folders, under two names),
-- with the recipe file it was compared with at run time and the override diff against that file
CREATE TABLE run_recipes (
    run_id       VARCHAR NOT NULL,
    recipe_name  VARCHAR,
    recorded     BOOLEAN NOT NULL,         -- false: a record written before origins were recorded
    recipe_file  VARCHAR,                  -- null: no recipe file found at run time
    located      VARCHAR,                  -- "given" (the recipe named its file) or "by name"
    overrides    VARCHAR                   -- JSON {dotted key: [file value, run value]}
);

-- the model's facts as measured by the run (null for records written before they were recorded)
CREATE TABLE run_models (
    run_id             VARCHAR PRIMARY KEY,
    params             BIGINT,
    trainable_params   BIGINT,
    gflops             DOUBLE,             -- one forward pass of flops_input (batch 1); multiply-add = 2 FLOPs
    flops_input        INTEGER[],
    pretrained_source  VARCHAR,
    checkpoint         VARCHAR,
    checkpoint_sha256  VARCHAR
);

-- the published figures a run's recipe reproduces (its `reported` block: one or several)
CREATE TABLE reported (
    run_id       VARCHAR NOT NULL,
    recipe_name  VARCHAR,                  -- the name whose recipe holds this figure
    value        DOUBLE NOT NULL,          -- percent, as published
    metric       VARCHAR NOT NULL,         -- accuracy, balanced_accuracy, ...
    role         VARCHAR NOT NULL,         -- the role of this protocol it corresponds to (test / val)
    source       VARCHAR,                  -- report id and table
    notes        VARCHAR                   -- what differs from the publication's setup
);

-- every scalar metric of every run; system = model | majority | prior (the baselines);
-- metric names: accuracy, balanced_accuracy, macro_f1, weighted_precision, weighted_recall, weighted_f1
CREATE TABLE fold_metrics (
    run_id  VARCHAR NOT NULL,
    system  VARCHAR NOT NULL,
    role    VARCHAR NOT NULL,
    metric  VARCHAR NOT NULL,
    value   DOUBLE
);

-- per-class precision / recall / F1 of the model in every run (null where undefined)
CREATE TABLE class_metrics (
    run_id     VARCHAR NOT NULL,
    role       VARCHAR NOT NULL,
    class_idx  INTEGER NOT NULL,
    class      VARCHAR NOT NULL,
    precision  DOUBLE,
    recall     DOUBLE,
    f1         DOUBLE,
    support    BIGINT NOT NULL
);

-- the model's test metrics of every run on each source dataset of its test set (merged sets)
CREATE TABLE source_metrics (
    run_id   VARCHAR NOT NULL,
    role     VARCHAR NOT NULL,
    dataset  VARCHAR NOT NULL,
    metric   VARCHAR NOT NULL,
    value    DOUBLE,
    n        BIGINT NOT NULL               -- test samples of that dataset in the run
);

CREATE TABLE confusion (
    run_id      VARCHAR NOT NULL,
    role        VARCHAR NOT NULL,
    true_label  VARCHAR NOT NULL,
    pred_label  VARCHAR NOT NULL,
    n           BIGINT NOT NULL
);

-- predictions stay in each run's predictions.parquet; this is the reference
CREATE TABLE predictions (
    run_id  VARCHAR PRIMARY KEY,
    path    VARCHAR NOT NULL
);

CREATE TABLE datasets (
    fingerprint VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL,
    title       VARCHAR,
    synthetic   BOOLEAN NOT NULL,
    num_rows    BIGINT
);

CREATE TABLE run_datasets (
    run_id      VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL
);

CREATE TABLE protocols (
    manifest_hash     VARCHAR PRIMARY KEY,
    protocol          VARCHAR NOT NULL,
    version           VARCHAR,
    seed              BIGINT,
    params            VARCHAR,             -- JSON
    n_folds           INTEGER,
    n_repeats         INTEGER,
    classes           VARCHAR[],
    leakage_verdict   VARCHAR,
    subject_overlap   BIGINT,
    exact_duplicates  BIGINT,
    near_duplicates   BIGINT
);

CREATE TABLE environment (
    run_id               VARCHAR PRIMARY KEY,
    git_sha              VARCHAR,
    git_dirty            BOOLEAN,
    ferbench_version     VARCHAR,
    packages             VARCHAR,          -- JSON name -> version
    python               VARCHAR,
    platform             VARCHAR,
    device               VARCHAR,
    device_name          VARCHAR,          -- GPU model (or CPU model on CPU)
    driver               VARCHAR,
    cuda                 VARCHAR,
    precision            VARCHAR,
    world_size           INTEGER,
    wall_s               DOUBLE,
    train_samples_per_s  DOUBLE
);

-- a comparison group: systems evaluated on exactly the same (repeat, fold, seed) runs of one manifest.
-- section 'ranked': the entries covering the ranked coverage (by default every fold of every repeat);
-- section 'partial': one entry that does not (its own runs; shown unranked, "partial k/K folds")
CREATE TABLE groups (
    group_id       VARCHAR PRIMARY KEY,
    protocol       VARCHAR NOT NULL,
    manifest_hash  VARCHAR NOT NULL,
    section        VARCHAR NOT NULL,       -- ranked | partial
    coverage       VARCHAR NOT NULL,       -- e.g. "repeat 0: folds 0-9 × seeds 0"
    k_folds        INTEGER NOT NULL,       -- (repeat, fold) pairs covered
    total_folds    INTEGER NOT NULL,       -- (repeat, fold) pairs of the protocol (n_repeats × n_folds)
    seeds          BIGINT[],
    n_cells        INTEGER NOT NULL,       -- runs per entry
    paired         BOOLEAN NOT NULL        -- every system saw the same test samples (paired tests valid)
);

-- the runs each entry of a group is scored on (the ranked coverage; other runs of the entry are not counted)
CREATE TABLE group_runs (
    group_id     VARCHAR NOT NULL,
    recipe_hash  VARCHAR NOT NULL,
    run_id       VARCHAR NOT NULL
);

-- every system of every group on every metric: entries (system 'model') and the baselines on the
-- same runs; mean over runs; CI and differences from the paired subject bootstrap (board_info)
CREATE TABLE standings (
    group_id          VARCHAR NOT NULL,
    system            VARCHAR NOT NULL,    -- model | majority | prior
    recipe_hash       VARCHAR,             -- the entry (null for a baseline)
    metric            VARCHAR NOT NULL,
    mean              DOUBLE,
    std               DOUBLE,              -- sample std over runs (null for a single run)
    n_runs            INTEGER,
    n_folds           INTEGER,
    n_seeds           INTEGER,
    ci_lo             DOUBLE,
    ci_hi             DOUBLE,
    ci_level          DOUBLE,
    ci_unit           VARCHAR,             -- "subject" or "sample": what was resampled
    clusters          BIGINT,
    position          INTEGER,             -- 1 = highest mean (ranked groups)
    rank              INTEGER,             -- shared by statistically tied entries: the position of their tier's leader
    tier              INTEGER,             -- 1 = tied with the best entry
    diff_best         DOUBLE,              -- mean minus the best entry's mean
    diff_best_lo      DOUBLE,
    diff_best_hi      DOUBLE,
    tied_with_best    BOOLEAN,
    best_baseline     VARCHAR,             -- the baseline with the higher mean on these runs
    diff_baseline     DOUBLE,              -- mean minus that baseline's mean
    diff_baseline_lo  DOUBLE,
    diff_baseline_hi  DOUBLE,
    vs_baseline       VARCHAR              -- above | not distinguishable | below
);

-- what the ingest noticed: skipped result files, duplicates, superseded runs, runs outside the coverage
CREATE TABLE notes (
    manifest_hash  VARCHAR,                -- null: not tied to one manifest
    kind           VARCHAR NOT NULL,       -- skipped | duplicate | superseded | not-counted | unpaired
    message        VARCHAR NOT NULL
);

-- reported, reproduced as published, reproduced honestly (leaderboard/reproduce.py): one row per
-- published figure of a recipe name that has runs; percent, gaps in points with paired cluster
-- bootstrap intervals; implementation_gap = as_published - reported, leakage_inflation =
-- as_published - honest
CREATE TABLE reproductions (
    recipe_name         VARCHAR NOT NULL,
    metric              VARCHAR NOT NULL,
    role                VARCHAR NOT NULL,
    source              VARCHAR,
    reported            DOUBLE NOT NULL,
    published_manifest  VARCHAR,
    published_protocol  VARCHAR,
    published_runs      INTEGER,
    as_published        DOUBLE,
    honest_manifest     VARCHAR,
    honest_protocol     VARCHAR,
    honest_runs         INTEGER,
    honest              DOUBLE,
    implementation_gap  DOUBLE,
    gap_lo              DOUBLE,
    gap_hi              DOUBLE,
    leakage_inflation   DOUBLE,
    inflation_lo        DOUBLE,
    inflation_hi        DOUBLE,
    note                VARCHAR
);
