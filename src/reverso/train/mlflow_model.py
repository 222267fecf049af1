"""The trained adapter as an MLflow model that reloads with its base model.

``mlflow.pyfunc.load_model("models:/reverso-policy@champion").predict(
pd.DataFrame({"messages": [[{"role": "user", "content": "..."}]]}), params={"max_new_tokens": 128})``
returns one greedy completion per conversation (row). Only the adapter is stored in MLflow; the base
model path is recorded in the model config (a team shares it through the DVC remote).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc

# Logged as code (MLflow "models from code"), so loading never unpickles anything.
MODEL_CODE = Path(__file__).with_name("policy_pyfunc.py")
MAX_NEW_TOKENS = 256  # the default of the model's ``max_new_tokens`` inference param


class ReversoPolicy(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from reverso.prepare_model import load_model_and_tokenizer

        self.model, self.tokenizer = load_model_and_tokenizer(context.model_config["base_model_dir"],
                                                              context.artifacts["adapter"])

    # model_input is left unannotated: MLflow turns a type hint into a schema it then enforces.
    def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> list[str]:  # noqa: ANN001
        from reverso.generation import GenerationSettings
        from reverso.generation.hf import HFSampler

        conversations = model_input["messages"].tolist()  # the signature makes the input a DataFrame
        max_new = int((params or {}).get("max_new_tokens", MAX_NEW_TOKENS))
        sampler = HFSampler(self.model, self.tokenizer, progress=False)
        outputs = sampler.generate(conversations, 1, GenerationSettings(0.0, 1.0, max_new, seed=0))
        return [row[0].text for row in outputs]


def log_policy(adapter_dir: str, base_model: str) -> Any:
    """Log the adapter as a pyfunc model; returns MLflow's ModelInfo."""
    import pandas as pd
    from mlflow.models import infer_signature

    from reverso import __version__

    example = pd.DataFrame({"messages": [[{"role": "user", "content": "Hello!"}]]})
    signature = infer_signature(example, ["Hi!"], params={"max_new_tokens": MAX_NEW_TOKENS})
    return mlflow.pyfunc.log_model(
        name="policy", python_model=str(MODEL_CODE), artifacts={"adapter": adapter_dir},
        model_config={"base_model_dir": base_model},
        pip_requirements=[f"reverso=={__version__}"], signature=signature,
    )
