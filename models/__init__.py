"""Training, evaluation, promotion decisions and the MLflow registry (the only MLflow module)."""
