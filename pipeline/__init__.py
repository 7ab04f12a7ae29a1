"""The imperative shell of the training pipeline: each stage reads files, calls pure code from
market/quality/features/models/trader, and writes files. DVC stages, Prefect tasks and the CLI all
call these same functions."""
