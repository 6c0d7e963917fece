-- ferbench leaderboard tables. The database is rebuilt from the runs' result.json files by
-- `ferbench leaderboard` (never written by a run), so it can always be deleted and rebuilt.

-- one row per (recipe, repeat, fold, seed) run
CREATE TABLE runs (
    run_id          VARCHAR PRIMARY KEY,   -- content key: recipe hash, manifest hash, fingerprints, code, repeat/fold/seed
    run_name        VARCHAR NOT NULL,
    run_dir         VARCHAR NOT NULL,
    created_at      TIMESTAMP,             -- UTC
    recipe_name     VARCHAR,
    recipe_hash     VARCHAR NOT NULL,
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
    selection       VARCHAR,               -- "best" (on the val role) or "last"
    selected_epoch  INTEGER,
    epochs_ran      INTEGER,
    stopped_early   BOOLEAN,
    ci_resamples    INTEGER,
    ci_level        DOUBLE
);

-- the published figure a run's recipe reproduces (its `reported` block), for runs that have one
CREATE TABLE reported (
    run_id  VARCHAR PRIMARY KEY,
    value   DOUBLE NOT NULL,               -- percent, as published
    metric  VARCHAR NOT NULL,              -- accuracy, balanced_accuracy, ...
    role    VARCHAR NOT NULL,              -- the role of this protocol it corresponds to (test / val)
    source  VARCHAR,                       -- report id and table
    notes   VARCHAR                        -- what differs from the publication's setup
);

-- every scalar metric of every run; system = model | majority | prior (the baselines);
-- metric names: accuracy, balanced_accuracy, macro_f1, weighted_*, recall/<class>
CREATE TABLE fold_metrics (
    run_id  VARCHAR NOT NULL,
    system  VARCHAR NOT NULL,
    role    VARCHAR NOT NULL,
    metric  VARCHAR NOT NULL,
    value   DOUBLE
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

-- bootstrap confidence intervals of each entry's pooled test predictions (computed at ingest)
CREATE TABLE intervals (
    manifest_hash VARCHAR NOT NULL,
    recipe_hash   VARCHAR NOT NULL,
    metric        VARCHAR NOT NULL,
    lo            DOUBLE,
    hi            DOUBLE,
    level         DOUBLE,
    unit          VARCHAR,                 -- "subject" or "sample": what was resampled
    clusters      BIGINT
);
