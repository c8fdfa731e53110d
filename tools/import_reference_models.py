"""One-off import: ../shared/reference/models.yaml -> lib/llmsizing/catalog/models/<slug>.yaml.

Kept for provenance: it shows how each catalog entry was made from the reference file
(config fields verbatim, published totals and their sources). Re-run only to re-import.
"""

import sys
from pathlib import Path

import yaml

SLUGS = {
    "deepseek-ai/DeepSeek-R1": ("deepseek-r1", "DeepSeek-R1 (671B MoE)"),
    "deepseek-ai/DeepSeek-V3": ("deepseek-v3", "DeepSeek-V3 (671B MoE)"),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B": ("deepseek-r1-distill-qwen-1.5b", "DeepSeek-R1-Distill-Qwen-1.5B"),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": ("deepseek-r1-distill-qwen-7b", "DeepSeek-R1-Distill-Qwen-7B"),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": ("deepseek-r1-distill-qwen-14b", "DeepSeek-R1-Distill-Qwen-14B"),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": ("deepseek-r1-distill-qwen-32b", "DeepSeek-R1-Distill-Qwen-32B"),
    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B": ("deepseek-r1-distill-llama-8b", "DeepSeek-R1-Distill-Llama-8B"),
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": ("deepseek-r1-distill-llama-70b", "DeepSeek-R1-Distill-Llama-70B"),
    "meta-llama/Llama-3.1-8B": ("llama-3.1-8b", "Llama 3.1 8B"),
    "meta-llama/Llama-3.1-70B": ("llama-3.1-70b", "Llama 3.1 70B"),
    "meta-llama/Llama-3.1-405B": ("llama-3.1-405b", "Llama 3.1 405B"),
    "Qwen/Qwen2.5-72B-Instruct": ("qwen2.5-72b", "Qwen2.5 72B Instruct"),
    "Qwen/Qwen3-8B": ("qwen3-8b", "Qwen3 8B"),
    "Qwen/Qwen3-32B": ("qwen3-32b", "Qwen3 32B"),
    "Qwen/Qwen3-235B-A22B": ("qwen3-235b-a22b", "Qwen3 235B-A22B (MoE)"),
    "Qwen/Qwen3-30B-A3B": ("qwen3-30b-a3b", "Qwen3 30B-A3B (MoE)"),
    "mistralai/Mixtral-8x7B-v0.1": ("mixtral-8x7b", "Mixtral 8x7B (MoE)"),
    "mistralai/Mistral-7B-v0.3": ("mistral-7b-v0.3", "Mistral 7B v0.3"),
    "google/gemma-2-27b": ("gemma-2-27b", "Gemma 2 27B"),
    "openai/gpt-oss-120b": ("gpt-oss-120b", "gpt-oss-120b (MoE)"),
    "openai/gpt-oss-20b": ("gpt-oss-20b", "gpt-oss-20b (MoE)"),
}
EXTRA_ALIASES = {
    "meta-llama/Llama-3.1-8B": ["meta-llama/Meta-Llama-3.1-8B", "meta-llama/Llama-3.1-8B-Instruct"],
    "meta-llama/Llama-3.1-70B": ["meta-llama/Meta-Llama-3.1-70B", "meta-llama/Llama-3.1-70B-Instruct"],
    "meta-llama/Llama-3.1-405B": ["meta-llama/Meta-Llama-3.1-405B", "meta-llama/Llama-3.1-405B-Instruct"],
    "Qwen/Qwen2.5-72B-Instruct": ["Qwen/Qwen2.5-72B"],
    "google/gemma-2-27b": ["google/gemma-2-27b-it"],
}


def main(src: Path, dst: Path) -> None:
    ref = yaml.safe_load(src.read_text())
    dst.mkdir(parents=True, exist_ok=True)
    for m in ref["models"]:
        slug, display = SLUGS[m["id"]]
        pub = m["published"]
        if m["family"] == "deepseek_v3":
            total = m["computed"]["main_total"]
            note = ("main model (61 layers) as listed for DeepSeek-R1; the Hugging Face checkpoint also stores "
                    "one MTP module and FP8 block scales (684,531,386,000 in all)")
            checkpoint_total = pub["hf_safetensors_total"]
        elif m["family"] == "gpt_oss":
            total = pub["logical_total"]
            note = "logical parameters (model card); the HF API counts MXFP4-packed bytes instead"
            checkpoint_total = pub["hf_api_safetensors"]["total"]
        else:
            total = pub.get("hf_safetensors_total", pub.get("hf_param_count"))
            note = pub.get("note", "Hugging Face safetensors parameter total")
            checkpoint_total = None
        entry = {
            "slug": slug,
            "name": display,
            "hf_id": m["id"],
            "aliases": EXTRA_ALIASES.get(m["id"], []),
            "family": m["family"],
            "params_published": total,
            "params_published_note": note,
            "checkpoint_params_published": checkpoint_total,
            "config_read_directly": m["config_read_directly"],
            "sources": [str(s) for s in m["config_source"]] + [str(s) for s in m["published_source"]],
            "config": m["config"],
        }
        (dst / f"{slug}.yaml").write_text(
            "# Imported from shared/reference/models.yaml by tools/import_reference_models.py\n"
            + yaml.safe_dump(entry, sort_keys=False, width=120, allow_unicode=True)
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
