"""Digests under DeepSpeed ZeRO-3: a partitioned (empty) parameter is gathered before hashing, never hashed empty.

No DeepSpeed here (it is a GPU-box package, requirements-gpu.lock): these tests check which path a
tensor takes and that a partitioned-looking one is refused rather than hashed as its empty shard.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from reverso.train import weights_digest
from reverso.train.ref_cache import base_weights_digest, full_tensors, is_partitioned

HAS_DEEPSPEED = importlib.util.find_spec("deepspeed") is not None


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    model[1].weight.requires_grad_(False)
    return model


def _partition_like_zero3(param: torch.nn.Parameter) -> None:
    """What ZeRO-3 leaves on a rank: an empty tensor carrying the full shape in ds_shape."""
    shape, numel = param.shape, param.numel()
    param.data = torch.empty(0, dtype=param.dtype)
    param.ds_shape, param.ds_numel = shape, numel


def test_partitioned_detection() -> None:
    plain = torch.nn.Parameter(torch.ones(2, 2))
    assert not is_partitioned(plain)
    assert not is_partitioned(torch.empty(0))  # an empty tensor that is not a shard is just empty
    _partition_like_zero3(plain)
    assert is_partitioned(plain)
    tagged = torch.nn.Parameter(torch.ones(1))
    tagged.ds_id = 7
    assert is_partitioned(tagged)


def test_plain_models_hash_unchanged_and_in_name_order() -> None:
    model = _model()
    names = [n for n, _ in full_tensors(model)]
    assert names == sorted(model.state_dict())
    assert [n for n, _ in full_tensors(model, trainable_only=True)] == ["0.bias", "0.weight", "1.bias"]
    # same values, same digest; another value, another digest
    assert base_weights_digest(model) == base_weights_digest(_model())
    assert weights_digest(model) == weights_digest(_model())
    other = _model()
    with torch.no_grad():
        other[0].weight[0, 0] += 1.0
    assert base_weights_digest(other) != base_weights_digest(model)
    assert weights_digest(other) != weights_digest(model)


@pytest.mark.skipif(HAS_DEEPSPEED, reason="with deepspeed installed the gather path needs an initialised ZeRO-3 engine")
@pytest.mark.parametrize("digest", [base_weights_digest, weights_digest], ids=["reference-cache", "ranks-agree"])
def test_a_partitioned_parameter_is_never_hashed_empty(digest) -> None:
    model = _model()
    _partition_like_zero3(model[0].weight)
    with pytest.raises(RuntimeError, match="partitioned by DeepSpeed ZeRO-3.*requirements-gpu.lock") as err:
        digest(model)
    assert "(3, 4)" in str(err.value)  # names the full shape it could not gather
