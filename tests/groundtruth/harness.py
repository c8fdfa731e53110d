"""Ground truth for the fine-tuning memory model: one real training step of a small random model on CPU.

``measure_training_step(config_dict, setup_kwargs)`` builds a model from a Hugging Face config
dictionary with transformers (random weights, no download), optionally wraps it with a PEFT LoRA
adapter and enables gradient checkpointing, runs forward, backward and one AdamW step, and
returns what the memory model estimates, measured:

- ``params_total``, ``trainable_params``;
- ``gradient_bytes``: Σ p.grad bytes after backward;
- ``optimizer_bytes``: AdamW ``exp_avg`` + ``exp_avg_sq`` bytes after ``optimizer.step()``
  (``optimizer_step_bytes`` holds the per-parameter ``step`` scalars separately);
- ``saved_bytes``: bytes autograd holds for the backward pass at the end of the forward pass,
  deduplicated by storage, parameters and buffers (and views of them) excluded. Tensors reach it
  two ways: the saved-tensor pack hook (``torch.autograd.graph.saved_tensors_hooks``) for ops
  outside checkpointed regions, and, with gradient checkpointing, the tensors each checkpointed
  decoder layer keeps to replay itself (its positional arguments and the keyword arguments bound
  into the replayed call: hidden states, rotary cos/sin, masks);
- ``saved_by_part``: the same bytes by where they were saved — ``layers`` (inside decoder
  layers, adapters excluded), ``lora`` (inside LoRA adapter modules), ``logits`` (after the last
  decoder layer: final norm, lm_head, loss), ``embedding`` (before the first layer),
  ``checkpoint_inputs`` (held by the checkpoint for the replay);
- ``layer_saved_bytes``: saved bytes of each decoder layer when it runs without checkpointing —
  what one layer's replay holds during the backward pass (the memory model's ``recompute_peak``).

Setup keys follow ``llmsizing.training.FinetuneSetup``: method (full | lora), precision (fp32 |
bf16: pure bf16, weights and optimizer states in bf16 as torchtune does), seq_len, micro_batch,
gradient_checkpointing, lora_rank, lora_alpha, lora_targets (all-linear | attention | q,v |
comma-separated module names), attention_kernel (flash | sdpa | eager; on CPU "flash" runs
PyTorch's scaled_dot_product_attention, whose CPU kernel is a flash-attention kernel that saves
q, k, v, the output and the log-sum-exp, as FlashAttention-2 does on GPU). Extra keys:
``threads`` (torch intra-op threads during the step, default 1), ``lora_dropout`` (default 0.0,
PEFT's default), ``adapter_dtype`` ("base": adapters in the model's
dtype, as torchtune keeps them; "fp32": PEFT's default ``autocast_adapter_dtype=True``) and ``seed``.

Importable without pytest (the validation command reuses it); needs torch, transformers, peft.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping

ATTENTION_IMPLEMENTATIONS = {"flash": "sdpa", "sdpa": "sdpa", "eager": "eager"}
_ATTENTION_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa",
                    "kv_b_proj", "Wqkv", "out_proj")


def _torch():
    import torch

    return torch


def _hf_config(config_dict: Mapping[str, Any], attn_implementation: str):
    import transformers

    cfg = {k: v for k, v in dict(config_dict).items()
           if not k.startswith("_") and k not in ("quantization_config", "architectures", "torch_dtype", "dtype")}
    model_type = cfg.pop("model_type")
    hf_cfg = transformers.AutoConfig.for_model(model_type, **cfg)
    hf_cfg._attn_implementation = attn_implementation
    hf_cfg.use_cache = False
    return hf_cfg


def build_model(config_dict: Mapping[str, Any], *, precision: str = "fp32", attention_kernel: str = "sdpa",
                seed: int = 0):
    """A randomly initialised causal LM for ``config_dict`` in fp32 or bf16, in training mode."""
    torch = _torch()
    import transformers

    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision {precision!r}: the CPU harness runs fp32 or pure bf16")
    attn = ATTENTION_IMPLEMENTATIONS[attention_kernel]
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(_hf_config(config_dict, attn), attn_implementation=attn)
    if precision == "bf16":
        model = model.to(torch.bfloat16)
    model.train()
    return model


def lora_target_names(model, targets: str) -> list[str] | str:
    """PEFT ``target_modules`` for a FinetuneSetup ``lora_targets`` value."""
    if targets == "all-linear":
        return "all-linear"
    leaf_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    if targets == "attention":
        return sorted(n for n in _ATTENTION_NAMES if n in leaf_names)
    if targets == "q,v":
        return ["q_proj", "v_proj"]
    return [t.strip() for t in targets.split(",") if t.strip()]


def _storage_key(t) -> tuple[int, int]:
    st = t.untyped_storage()
    return st.data_ptr(), st.nbytes()


class _SavedTensorCounter:
    """Deduplicated bytes of tensors kept for the backward pass, by region."""

    def __init__(self, excluded_ptrs: set[int]):
        self.excluded = excluded_ptrs
        self.seen: dict[int, tuple[int, str]] = {}
        self.region: list[str] = ["embedding"]
        self.layer_index: int | None = None
        self.per_layer: dict[int, int] = {}
        self.records: list[dict[str, Any]] = []
        self.module_path: list[str] = []
        self.record_index: dict[int, int] = {}

    def add(self, t, region: str | None = None) -> None:
        torch = _torch()
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return
        if t.layout != torch.strided:
            return
        ptr, nbytes = _storage_key(t)
        if ptr == 0 or ptr in self.excluded or ptr in self.seen:
            return
        where = region or self.region[-1]
        self.seen[ptr] = (nbytes, where)
        self.record_index[ptr] = len(self.records)
        self.records.append({"part": where, "dtype": str(t.dtype).replace("torch.", ""), "shape": tuple(t.shape),
                             "bytes": nbytes, "module": self.module_path[-1] if self.module_path else "",
                             "saved_by": ""})
        if self.layer_index is not None and where in ("layers", "lora"):
            self.per_layer[self.layer_index] = self.per_layer.get(self.layer_index, 0) + nbytes

    def pack(self, t):
        self.add(t)
        return t

    @staticmethod
    def unpack(t):
        return t

    def by_part(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for nbytes, where in self.seen.values():
            out[where] = out.get(where, 0) + nbytes
        return out

    @property
    def total(self) -> int:
        return sum(n for n, _ in self.seen.values())


def _decoder_layers(model):
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def _install_region_hooks(model, counter: _SavedTensorCounter):
    """Track which region of the model is running (embedding, layer i, LoRA adapter, head)."""
    handles = []
    layers = _decoder_layers(model)

    def layer_pre(idx):
        def hook(module, args, kwargs=None):
            counter.region.append("layers")
            counter.layer_index = idx
        return hook

    def layer_post(module, args, *rest):
        counter.region.pop()
        counter.layer_index = None
        counter.region[0] = "logits"  # everything after a decoder layer and outside the next one

    names = {id(m): n for n, m in model.named_modules()}

    def enter_module(module, args):
        counter.module_path.append(names.get(id(module), type(module).__name__))

    def leave_module(module, args, output):
        if counter.module_path:
            counter.module_path.pop()

    for module in model.modules():
        handles.append(module.register_forward_pre_hook(enter_module))
        handles.append(module.register_forward_hook(leave_module))

    def enter_lora(module, args):
        counter.region.append("lora")

    def leave_lora(module, args, output):
        counter.region.pop()

    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_pre_hook(layer_pre(i)))
        handles.append(layer.register_forward_hook(layer_post))
    for name, module in model.named_modules():
        parent = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
        if parent in ("lora_A", "lora_B", "lora_dropout"):  # PEFT: <layer>.lora_A.<adapter name>
            handles.append(module.register_forward_pre_hook(enter_lora))
            handles.append(module.register_forward_hook(leave_lora))
    return handles, layers


def _wrap_checkpoint_funcs(layers, counter: _SavedTensorCounter):
    """Record what each checkpointed layer keeps for its replay: the call's tensor arguments."""
    originals = []
    for layer in layers:
        orig = getattr(layer, "_gradient_checkpointing_func", None)
        if orig is None or not layer.gradient_checkpointing:
            continue

        def wrapped(fn, *args, __orig=orig, **kwargs):
            bound = list(args) + list(kwargs.values())
            if isinstance(fn, functools.partial):
                bound += list(fn.args) + list(fn.keywords.values())
            for value in bound:
                for t in _tensors_in(value):
                    counter.add(t, "checkpoint_inputs")
            return __orig(fn, *args, **kwargs)

        originals.append((layer, orig))
        layer._gradient_checkpointing_func = wrapped
    return originals


def _tensors_in(value):
    torch = _torch()
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors_in(v)


def _label_saved_by(loss, counter: _SavedTensorCounter) -> None:
    """Name the autograd node (and attribute) that saved each recorded tensor, walking the graph."""
    torch = _torch()
    seen_nodes, stack = set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        for attr in dir(node):
            if not attr.startswith("_saved_"):
                continue
            try:
                value = getattr(node, attr)
            except Exception:  # noqa: BLE001 - some saved values cannot be unpacked outside backward
                continue
            for t in _tensors_in(value):
                if isinstance(t, torch.Tensor) and t.layout == torch.strided:
                    idx = counter.record_index.get(t.untyped_storage().data_ptr())
                    if idx is not None and not counter.records[idx]["saved_by"]:
                        counter.records[idx]["saved_by"] = f"{node.name()}.{attr[len('_saved_'):]}"
        stack.extend(fn for fn, _ in node.next_functions if fn is not None)


def _param_ptrs(model) -> set[int]:
    ptrs = set()
    for p in list(model.parameters()) + list(model.buffers()):
        ptrs.add(p.untyped_storage().data_ptr())
    return ptrs


def _forward_loss(model, input_ids):
    out = model(input_ids=input_ids, labels=input_ids, use_cache=False)
    return out.loss


def _layer_saved_bytes(model, input_ids) -> list[int]:
    """Saved bytes of each decoder layer with checkpointing off (one layer's replay during backward)."""
    torch = _torch()
    layers = _decoder_layers(model)
    flags = [layer.gradient_checkpointing for layer in layers]
    for layer in layers:
        layer.gradient_checkpointing = False
    counter = _SavedTensorCounter(_param_ptrs(model))
    handles, _ = _install_region_hooks(model, counter)
    try:
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
            loss = _forward_loss(model, input_ids)
        del loss
    finally:
        for h in handles:
            h.remove()
        for layer, flag in zip(layers, flags):
            layer.gradient_checkpointing = flag
    return [counter.per_layer.get(i, 0) for i in range(len(layers))]


def measure_training_step(config_dict: Mapping[str, Any], setup_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Run one training step on CPU and measure trainable parameters, gradients, optimizer states
    and the bytes saved for the backward pass (see the module docstring)."""
    torch = _torch()
    s = dict(setup_kwargs)
    method = s.get("method", "lora")
    if method not in ("full", "lora"):
        raise ValueError(f"method {method!r}: the CPU harness measures full and lora (QLoRA needs CUDA bitsandbytes)")
    # Tiny models gain nothing from intra-op threads, and on a shared 2-core runner OpenMP spin-waits
    # make a 0.2 s step take 30 s: one thread unless told otherwise, restored on return.
    threads_before = torch.get_num_threads()
    torch.set_num_threads(int(s.get("threads", 1)))
    try:
        return _measure(torch, config_dict, s)
    finally:
        torch.set_num_threads(threads_before)


def _measure(torch, config_dict, s) -> dict[str, Any]:
    method = s.get("method", "lora")
    precision = s.get("precision", "fp32")
    kernel = s.get("attention_kernel", "flash")
    seq_len, micro_batch = int(s.get("seq_len", 64)), int(s.get("micro_batch", 1))
    ckpt = bool(s.get("gradient_checkpointing", False))
    seed = int(s.get("seed", 0))

    model = build_model(config_dict, precision=precision, attention_kernel=kernel, seed=seed)
    params_total = sum(p.numel() for p in model.parameters())
    if method == "lora":
        import peft

        lora_cfg = peft.LoraConfig(
            r=int(s.get("lora_rank", 16)), lora_alpha=int(s.get("lora_alpha", 32)),
            target_modules=lora_target_names(model, s.get("lora_targets", "all-linear")),
            lora_dropout=float(s.get("lora_dropout", 0.0)), bias="none", task_type="CAUSAL_LM")
        # Adapter dtype: "base" keeps the adapters in the base model's dtype (torchtune; PEFT with
        # autocast_adapter_dtype=False); "fp32" is PEFT's default, which upcasts bf16 adapters to fp32
        # and then casts every adapted module's input to fp32.
        adapter_fp32 = s.get("adapter_dtype", "base") == "fp32"
        model = peft.get_peft_model(model, lora_cfg, autocast_adapter_dtype=adapter_fp32)
        model.train()
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainable = [p for p in model.parameters() if p.requires_grad]

    g = torch.Generator().manual_seed(seed + 1)
    vocab = model.config.vocab_size
    input_ids = torch.randint(0, vocab, (micro_batch, seq_len), generator=g)

    counter = _SavedTensorCounter(_param_ptrs(model))
    handles, layers = _install_region_hooks(model, counter)
    originals = _wrap_checkpoint_funcs(layers, counter) if ckpt else []
    try:
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
            loss = _forward_loss(model, input_ids)
    finally:
        for h in handles:
            h.remove()
        for layer, orig in originals:
            layer._gradient_checkpointing_func = orig
    _label_saved_by(loss, counter)
    saved_total = counter.total
    saved_by_part = counter.by_part()
    per_layer = [counter.per_layer.get(i, 0) for i in range(len(layers))]
    records = counter.records
    del counter

    loss.backward()
    gradient_bytes = sum(p.grad.numel() * p.grad.element_size() for p in trainable if p.grad is not None)
    opt = torch.optim.AdamW(trainable, lr=1e-4, foreach=False)
    opt.step()
    state_bytes = step_bytes = 0
    for st in opt.state.values():
        for key, v in st.items():
            if not isinstance(v, torch.Tensor):
                continue
            if key == "step":
                step_bytes += v.numel() * v.element_size()
            else:
                state_bytes += v.numel() * v.element_size()
    loss_value = float(loss.detach())
    del loss

    layer_bytes = _layer_saved_bytes(model, input_ids) if ckpt else per_layer
    trainable_count = sum(p.numel() for p in trainable)
    return {
        "params_total": params_total,
        "trainable_params": trainable_count,
        "trainable_bytes": sum(p.numel() * p.element_size() for p in trainable),
        "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "gradient_bytes": gradient_bytes,
        "optimizer_bytes": state_bytes,
        "optimizer_step_bytes": step_bytes,
        "saved_bytes": saved_total,
        "saved_by_part": saved_by_part,
        "layer_saved_bytes": layer_bytes,
        "recompute_peak_bytes": max(layer_bytes) if (ckpt and layer_bytes) else 0,
        "saved_records": records,
        "loss": loss_value,
        "loss_is_finite": math.isfinite(loss_value),
        "attn_implementation": ATTENTION_IMPLEMENTATIONS[kernel],
        "num_layers": len(layers),
    }


def summarize_records(records, top: int | None = None, part: str | None = None) -> str:
    """Readable table of the saved tensors (part, module, saving op, dtype, shape, bytes), largest first."""
    rows = [r for r in records if part is None or r["part"] == part]
    rows = sorted(rows, key=lambda r: -r["bytes"])[:top]
    return "\n".join(f"{r['part']:17s} {r['module'][-44:]:44s} {r['saved_by'][:38]:38s} {r['dtype']:8s} "
                     f"{str(r['shape']):22s} {r['bytes']:>11,d}" for r in rows)
