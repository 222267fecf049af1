"""generation/merge.py: backend vllm loads base + adapter as one merged folder, cached by weights digest."""

from __future__ import annotations

from pathlib import Path

from reverso.generation import GenerationSettings, make_sampler
from reverso.generation.merge import MERGE_INFO, merged_model_dir


def random_adapter(model_dir: Path, out: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), use_safetensors=True)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out, safe_serialization=True)
    return out


def test_merged_folder_answers_as_base_plus_adapter_and_is_cached(tiny_model_dir, tmp_path) -> None:
    adapter = random_adapter(tiny_model_dir, tmp_path / "adapter")
    merged = merged_model_dir(tiny_model_dir, adapter, tmp_path / "cache")
    assert (merged / MERGE_INFO).exists() and (merged / "chat_template.jinja").exists()
    stamp = (merged / "model.safetensors").stat().st_mtime_ns
    assert merged_model_dir(tiny_model_dir, adapter, tmp_path / "cache") == merged  # cached: no second merge
    assert (merged / "model.safetensors").stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [merged.name]  # no staging left behind
    settings = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=12, seed=0)
    prompts = [[{"role": "user", "content": "Say hello."}], [{"role": "user", "content": "Count to three."}]]
    with_adapter = make_sampler("hf", tiny_model_dir, adapter, progress=False).generate(prompts, 1, settings)
    from_merged = make_sampler("hf", merged, progress=False).generate(prompts, 1, settings)
    base = make_sampler("hf", tiny_model_dir, progress=False).generate(prompts, 1, settings)
    assert from_merged == with_adapter != base
