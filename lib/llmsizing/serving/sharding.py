"""What each GPU of a serving layout holds: its pipeline stage's layers, its weights, its share of the KV cache.

Weights per GPU come from the module list (``architecture.model_modules``) sharded the way vLLM shards
them: column/row-parallel linears ÷ TP, vocabulary-parallel embedding and lm_head ÷ TP, K/V projections
split by KV head (replicated when TP > KV heads), norms, routers and the MLA down-projections
(``q_a_proj``, ``kv_a_proj_with_mqa``) replicated; pipeline stages split the layers as vLLM's
``get_pp_indices`` does. The MLA latent KV cache is replicated on every TP rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from llmsizing import architecture as A
from llmsizing.errors import ScenarioError
from llmsizing.specs import ModelSpec, Precision
from llmsizing.weights import module_weight_bytes


@dataclass(frozen=True)
class Layout:
    """How the model is spread over GPUs: tensor × pipeline parallel, experts split over ``expert_parallel``."""

    tensor_parallel: int
    pipeline_parallel: int = 1
    expert_parallel: int = 1
    gpus_per_node: int = 8
    attention_dp: bool = False   # attention data-parallel over the TP group: each GPU its own requests

    @property
    def kv_replicas(self) -> int:
        """Independent KV pools per replica: the TP group size with attention DP (each GPU its own users), else 1."""
        return self.tensor_parallel if self.attention_dp else 1

    @property
    def gpus(self) -> int:
        """GPUs in the layout = TP × PP."""
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def nodes(self) -> int:
        """Nodes needed = ceil(GPUs / GPUs per node)."""
        return -(-self.gpus // self.gpus_per_node)

    def to_dict(self) -> dict[str, int]:
        d = {"gpus": self.gpus, "nodes": self.nodes, "gpus_per_node": min(self.gpus, self.gpus_per_node),
             "tensor_parallel": self.tensor_parallel, "pipeline_parallel": self.pipeline_parallel,
             "expert_parallel": self.expert_parallel}
        if self.attention_dp:
            d["attention_dp"] = True
        return d


# ----------------------------------------------------------------------------- layers of a stage


def pipeline_stages(num_layers: int, pp: int) -> list[tuple[int, int]]:
    """Layer ranges [start, stop) of each pipeline stage, as vLLM ``get_pp_indices`` splits them.

    Every stage gets L // pp layers; the L % pp extra layers go to the stages just before the last
    (github.com/vllm-project/vllm, vllm/distributed/utils.py ``get_pp_indices``).
    """
    if pp < 1 or pp > num_layers:
        raise ScenarioError(f"pipeline_parallel {pp} must be between 1 and the {num_layers} layers")
    parts = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        parts[-i] += 1
    out, start = [], 0
    for n in parts:
        out.append((start, start + n))
        start += n
    return out


# ----------------------------------------------------------------------------- weights per GPU


@dataclass(frozen=True)
class WeightTable:
    """Weight bytes of one (model, precision), split by how tensor parallelism shards them.

    Per layer: ``sharded`` (÷ TP), ``replicated`` (on every rank), ``kv`` (K/V projections: ÷ KV heads,
    × heads per rank), ``experts`` (routed experts, ÷ TP or EP), ``matmul_active`` (weight elements
    multiplied per token). Prefix sums make a pipeline stage O(1).
    """

    embed: float
    lm_head: float
    final: float
    lm_head_matmul: float
    layers: int
    sharded: tuple[float, ...]
    replicated: tuple[float, ...]
    kv: tuple[float, ...]
    experts: tuple[float, ...]
    matmul_active: tuple[float, ...]
    total: float

    def stage_sum(self, name: str, start: int, stop: int) -> float:
        prefix = getattr(self, name)
        return prefix[stop] - prefix[start]


_REPLICATED_ATTENTION = ("q_a_proj", "q_a_layernorm", "kv_a_proj_with_mqa", "kv_a_layernorm")


def shard_class(m: A.Module) -> str:
    """How vLLM/SGLang tensor parallelism places module ``m``: sharded, replicated, kv, experts, vocab.

    vLLM model code (vllm/model_executor/layers/linear.py, vocab_parallel_embedding.py,
    fused_moe/layer.py): VocabParallelEmbedding/ParallelLMHead (vocab), QKVParallelLinear (kv for K/V),
    Column/RowParallelLinear (sharded), ReplicatedLinear for routers and the DeepSeek MLA
    down-projections (replicated), RMSNorm weights replicated, FusedMoE experts.
    """
    if m.group in ("embedding", "lm_head"):
        return "vocab"
    if m.group == "experts":
        return "experts"
    if m.kind == "norm" or m.group in ("router", "position") or m.name in _REPLICATED_ATTENTION:
        return "replicated"
    if m.name in ("k_proj", "v_proj"):
        return "kv"
    return "sharded"


def _prefix(values: Iterable[float]) -> tuple[float, ...]:
    out = [0.0]
    for v in values:
        out.append(out[-1] + v)
    return tuple(out)


@lru_cache(maxsize=512)
def weight_table(spec: ModelSpec, precision: Precision) -> WeightTable:
    """Build the ``WeightTable`` of ``spec`` stored in ``precision`` (cached; MTP modules are not served)."""
    L = spec.num_layers
    per = {k: [0.0] * L for k in ("sharded", "replicated", "kv", "experts", "matmul_active")}
    embed = lm_head = final = 0.0
    for m in A.model_modules(spec):
        b = module_weight_bytes(m, precision, L, spec)
        cls = shard_class(m)
        if m.layer < 0:
            if m.group == "embedding":
                embed += b
            elif m.group == "lm_head":
                lm_head += b
            else:
                final += b
            continue
        per[cls if cls != "vocab" else "sharded"][m.layer] += b
        if m.kind == "linear":
            per["matmul_active"][m.layer] += m.active_count * m.weight_params
    lm_matmul = float(spec.hidden_size * spec.vocab_size)
    total = embed + lm_head + final + sum(sum(v) for k, v in per.items() if k != "matmul_active")
    return WeightTable(embed=embed, lm_head=lm_head, final=final, lm_head_matmul=lm_matmul, layers=L,
                       total=total, **{k: _prefix(v) for k, v in per.items()})


def kv_heads_per_rank(spec: ModelSpec, tp: int) -> int:
    """KV heads one TP rank holds: n_kv / tp, or 1 (replicated) when tp > n_kv (vLLM QKVParallelLinear)."""
    return max(1, spec.num_kv_heads // tp)


def stage_weight_bytes(table: WeightTable, spec: ModelSpec, tp: int, start: int, stop: int,
                       first: bool, last: bool, embed_on_gpu: bool = True) -> float:
    """Weight bytes on one GPU of a stage holding layers [start, stop) at tensor parallel ``tp``.

    = Σ(sharded/tp + replicated + kv·h_rank/n_kv + experts/tp) + embedding/tp (first stage)
      + lm_head/tp + final norm (last stage; a tied head re-uses the embedding, loaded again when pp > 1).
    """
    kv_frac = kv_heads_per_rank(spec, tp) / spec.num_kv_heads
    b = (table.stage_sum("sharded", start, stop) / tp + table.stage_sum("replicated", start, stop)
         + table.stage_sum("kv", start, stop) * kv_frac + table.stage_sum("experts", start, stop) / tp)
    if first and embed_on_gpu:
        b += table.embed / tp
    if last:
        b += table.lm_head / tp + table.final
        if spec.tie_embeddings and not first:
            b += table.embed / tp
    return b


def stage_weight_bytes_attention_dp(table: WeightTable, spec: ModelSpec, ep: int, start: int, stop: int,
                                    first: bool, last: bool) -> float:
    """Weight bytes on one GPU with attention data parallel over a group of ``ep`` GPUs (SGLang
    ``--enable-dp-attention``, TensorRT-LLM ``enable_attention_dp``): everything but the routed experts
    whole on every GPU (``stage_weight_bytes`` at TP 1), the routed experts split over the group (expert
    parallel × MoE tensor parallel = the group)."""
    whole = stage_weight_bytes(table, spec, 1, start, stop, first, last)
    experts = table.stage_sum("experts", start, stop)
    return whole - experts + experts / ep


def stage_weight_split(table: WeightTable, tp: int, start: int, stop: int, stage_weights: float,
                       embed_here: bool) -> tuple[float, float, float]:
    """(dense bytes, routed-expert bytes, embedding bytes) of one GPU's ``stage_weights``.

    experts = Σ routed experts of the stage / tp; embedding = embedding / tp when the stage looks tokens
    up on the GPU; dense = the rest (read whole every step, unlike the experts a batch touches).
    """
    experts = table.stage_sum("experts", start, stop) / tp
    embed = table.embed / tp if embed_here else 0.0
    return stage_weights - experts - embed, experts, embed


# ----------------------------------------------------------------------------- KV cache per GPU


def kv_elems_per_token_per_layer_per_gpu(spec: ModelSpec, tp: int, mla_mode: str) -> float:
    """Cached elements per token per layer on one tensor-parallel rank: the one home of KV per GPU.

    = ``architecture.kv_elems_per_token_per_layer`` × the rank's share. GQA/MHA: KV heads on the rank
    ÷ KV heads (one head replicated per rank when tp > n_kv, vLLM QKVParallelLinear), i.e.
    2 · d · h_rank. MLA latent: the kv_lora_rank + rope latent is replicated on every rank (share 1;
    vLLM and SGLang MLA backends). MLA decompressed: heads split over the ranks (share 1/tp).
    Multiply by the layers on the GPU's pipeline stage and the bytes per element for bytes per token.
    """
    elems = A.kv_elems_per_token_per_layer(spec, mla_mode)
    if spec.is_mla:
        return elems if mla_mode == "latent" else elems / tp
    return elems * kv_heads_per_rank(spec, tp) / spec.num_kv_heads
