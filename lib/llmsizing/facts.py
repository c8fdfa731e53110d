"""The architecture facts of one model as ``llmsizing model --json`` and the Python API show them."""

from __future__ import annotations

from llmsizing import architecture as A
from llmsizing import catalog
from llmsizing.specs import ModelSpec


def model_summary(spec: ModelSpec) -> dict:
    """The facts ``llmsizing model --json`` prints for one model."""
    entry = catalog.model_entry(spec)
    return {
        "model": spec.slug,
        "name": spec.name,
        "hf_id": spec.hf_id,
        "revision": spec.revision or None,
        "family": spec.family,
        "params_total": A.params_total(spec),
        "params_active": A.params_active(spec),
        "params_mtp": A.params_mtp(spec),
        "params_published": spec.params_published,
        "checkpoint_params_published": entry.checkpoint_params_published if entry else None,
        "params_by_component": A.params_by_group(spec),
        "kv_cache_bytes_per_token": round(A.kv_cache_bytes_per_token(spec, 2.0)),
        "kv_cache_bytes_per_token_note": "bf16 K/V (2 bytes per element), all layers at full context"
        + ("; MLA latent cache (kv_lora_rank + qk_rope_head_dim)" if spec.is_mla else ""),
        "layers": spec.num_layers,
        "hidden_size": spec.hidden_size,
        "attention_heads": spec.num_heads,
        "kv_heads": spec.num_kv_heads,
        "head_dim": spec.head_dim,
        "vocab_size": spec.vocab_size,
        "tied_embeddings": spec.tie_embeddings,
        "moe": {"experts": spec.num_experts, "experts_per_token": spec.experts_per_token,
                "shared_experts": spec.num_shared_experts, "moe_layers": len(spec.moe_layers)} if spec.is_moe else None,
        "mla": {"kv_lora_rank": spec.kv_lora_rank, "q_lora_rank": spec.q_lora_rank,
                "qk_rope_head_dim": spec.qk_rope_head_dim} if spec.is_mla else None,
        "sliding_window": spec.sliding_window or None,
        "sliding_layers": len(spec.sliding_layers),
        "max_context_tokens": spec.max_context_tokens,
        "checkpoint_format": spec.checkpoint_format,
        "forward_flop_per_token_at_4k": A.forward_flop_per_token(spec, 4096),
    }
