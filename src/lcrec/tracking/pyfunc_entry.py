"""The registered pyfunc model's code (MLflow "models from code"): logged as the model's python_model file, so
loading a version imports lcrec instead of unpickling an object."""

import mlflow.models

from lcrec.tracking.pyfunc_model import LcrecPyfuncModel

mlflow.models.set_model(LcrecPyfuncModel())
