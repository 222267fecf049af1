"""Entry file MLflow executes to load the policy model (models from code; no pickles)."""

import mlflow.models

from reverso.train.mlflow_model import ReversoPolicy

mlflow.models.set_model(ReversoPolicy())
