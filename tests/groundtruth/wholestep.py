"""Whole-step peak of live tensor bytes: one complete training step of a tiny model on CPU.

``measure_whole_step(config_dict, setup_kwargs)`` builds a tiny random model (``harness.build_model``),
optionally wraps it in LoRA or QLoRA, and runs a steady-state training step — forward, loss,
backward, AdamW step, ``zero_grad`` — while a ``TorchDispatchMode`` records every tensor storage the
step allocates and frees. It returns the peak of live tensor bytes (what
``torch.cuda.max_memory_allocated`` reports on a GPU, less allocator rounding), the phase and op
the peak occurs in, and the live bytes at the peak by category.

How bytes are counted
---------------------
- Every op output seen by the dispatch mode is registered by its untyped storage (once per storage:
  views and in-place results of a live storage add nothing) with ``nbytes`` of the storage; a
  ``weakref.finalize`` on the storage object unregisters it when the storage is freed (PyTorch keeps
  a storage's Python object alive exactly as long as the C++ storage: PyObject preservation).
- Tensors that exist before the step (parameters, buffers, optimizer states, bitsandbytes quant
  states, input ids) are registered first: the peak includes them, as the device peak does.
- Kernel-internal workspaces are not tensors and are not seen (GPU kernels differ anyway), with one
  exception: bitsandbytes' ``gemm_4bit`` op hides its dequantization inside one op, so the mode
  replays it as bitsandbytes' CUDA path for more than 1,536 tokens does
  (``backends/cuda/ops.py::_dequant_linear_fallback``: fp32 absmax, absmax + offset, bf16 weight,
  ``F.linear``) and counts those tensors.
- The step is steady state: a warm-up ``optimizer.step()`` on zero gradients creates the AdamW
  states first (real runs peak on step 2 and later, when the states exist through the forward pass);
  gradients start as ``None`` (``zero_grad(set_to_none=True)``), as in HF Trainer and torchtune.
- The model output object is dropped before ``backward()`` (HF Trainer's ``compute_loss`` returns only
  the loss), so the bf16 logits live on only if autograd saved them.

Phases: ``forward`` (embedding and decoder layers), ``head`` (final norm and lm_head), ``loss``
(transformers' ``ForCausalLMLoss``: ``logits.float()``, ``cross_entropy``), ``backward``,
``optimizer`` (``optimizer.step()``), ``zero_grad``.

Categories of the live bytes at a peak (``breakdown``):

- ``weights``: parameters and buffers (packed 4-bit weights and their quant states for QLoRA);
- ``optimizer_state``: AdamW ``exp_avg``, ``exp_avg_sq``, ``step``;
- ``gradients``: storages that are (or become) a trainable parameter's ``.grad``;
- ``saved_activations``: tensors autograd saved for backward (pack hook), outside checkpointed layers;
- ``checkpoint_inputs``: other tensors created in the forward pass and still alive — with gradient
  checkpointing the layer inputs the checkpoint keeps for the replay (and rotary cos/sin);
- ``logits``: the head's bf16 logits while alive (``head`` phase output);
- ``loss_fp32``: tensors created by the loss (fp32 upcast of the logits, log-softmax);
- ``forward_transient``: tensors created in the forward pass, neither saved nor kept (in flight);
- ``recompute``: tensors a checkpointed layer's replay creates during backward (its saved tensors);
- ``backward_transient``: other tensors created in backward that are not gradients (gradients of
  activations in flight, e.g. the fp32 gradient of the log-softmax, dq/dk/dv);
- ``dequantized_weight``: bitsandbytes' dequantized bf16 weight and fp32 absmax (forward and backward);
- ``optimizer_transient``: tensors the optimizer step allocates and frees (foreach ``exp_avg_sq.sqrt()``);
- ``inputs``: the input ids.

QLoRA: real bitsandbytes (``bnb.nn.Linear4bit``, NF4, double quantization, compute dtype bf16, block
64; PEFT's ``lora.bnb.Linear4bit`` adapter) when ``import bitsandbytes`` works (its CPU backend runs
with torch 2.13), else ``EmulatedLinear4bit``, which allocates the same storages (packed uint8 n/2,
uint8 absmax n/64, fp32 second-level absmax, fp32 256-entry code, fp32 offset; dequantized fp32
absmax ×2 and bf16 weight in forward, fp32 absmax and bf16 weight in backward) and an adapter with
PEFT's bnb forward (``result = result.clone()`` then ``result = result + lora_B(lora_A(x)) * scale``).
``setup["qlora_backend"]``: ``auto`` (default), ``bnb`` or ``emulated``. As transformers'
``replace_with_bnb_linear`` does, only modules whose type is exactly ``nn.Linear`` are quantized,
lm_head and MoE routers excepted; transformers 5 keeps routed experts as fused 3-D parameters, which
stay bf16.
"""

from __future__ import annotations

import math
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Mapping

from .harness import ATTENTION_IMPLEMENTATIONS, _decoder_layers, build_model, lora_target_names

PHASES = ("forward", "head", "loss", "backward_head", "backward_layers", "backward_embedding", "optimizer",
          "zero_grad")
BACKWARD_PHASES = ("backward_head", "backward_layers", "backward_embedding")
CATEGORIES = ("weights", "optimizer_state", "gradients", "saved_activations", "checkpoint_inputs", "logits",
              "loss_fp32", "forward_transient", "recompute", "backward_transient", "dequantized_weight",
              "optimizer_transient", "inputs")
_DEQUANT_OPS = ("bitsandbytes.dequantize_4bit", "bitsandbytes.dequantize_blockwise", "emulated.dequantize")


def _torch():
    import torch

    return torch


# ----------------------------------------------------------------------------- tracking


@dataclass
class _Rec:
    seq: int
    nbytes: int
    dtype: str
    shape: tuple
    op: str
    phase: str
    where: str
    kind: str = ""          # baseline kind: weights | optimizer_state | gradients | inputs
    saved: bool = False
    grad: bool = False
    recompute: bool = False
    freed: int | None = None


class LiveTracker:
    """Live tensor bytes by storage; every allocation and free is an event with a sequence number."""

    def __init__(self) -> None:
        self.records: list[_Rec] = []
        self.live: dict[int, _Rec] = {}
        self.total = 0
        self.peak = 0
        self.peak_seq = -1
        self.seq = 0
        self.phase = "setup"
        self.phase_peak: dict[str, tuple[int, int]] = {}   # phase -> (bytes, seq)
        self.module_stack: list[str] = []
        self.in_recompute = 0
        self.paused = 0
        self._finalizers: list = []

    @staticmethod
    def _storage(t):
        torch = _torch()
        if not isinstance(t, torch.Tensor) or t.device.type == "meta":
            return None
        if t.layout != torch.strided:
            return None
        try:
            return t.untyped_storage()
        except (RuntimeError, NotImplementedError):
            return None

    def key_of(self, t) -> int | None:
        st = self._storage(t)
        return None if st is None else st._cdata

    def record_of(self, t) -> _Rec | None:
        k = self.key_of(t)
        return None if k is None else self.live.get(k)

    def track(self, t, op: str, kind: str = "") -> _Rec | None:
        if self.paused:
            return None
        st = self._storage(t)
        if st is None:
            return None
        n = st.nbytes()
        if n == 0:
            return None
        key = st._cdata
        rec = self.live.get(key)
        if rec is not None:
            if rec.nbytes != n:  # resized in place
                self.total += n - rec.nbytes
                rec.nbytes = n
                self._bump()
            return rec
        torch = _torch()
        where = self.module_stack[-1] if self.module_stack else ""
        if self.phase in BACKWARD_PHASES:
            node = torch._C._current_autograd_node()
            where = (node.name() if node is not None else "") + ("|" + where if self.in_recompute else "")
        self.seq += 1
        rec = _Rec(self.seq, n, str(t.dtype).replace("torch.", ""), tuple(t.shape), op, self.phase, where, kind,
                   recompute=bool(self.in_recompute and self.phase in BACKWARD_PHASES))
        self.records.append(rec)
        self.live[key] = rec
        self.total += n
        f = weakref.finalize(st, self._free, key, rec)
        f.atexit = False
        self._bump()
        return rec

    def _free(self, key: int, rec: _Rec) -> None:
        if self.live.get(key) is rec:
            del self.live[key]
            self.total -= rec.nbytes
            self.seq += 1
            rec.freed = self.seq

    def _bump(self) -> None:
        if self.total > self.peak:
            self.peak, self.peak_seq = self.total, self.seq
        best = self.phase_peak.get(self.phase)
        if best is None or self.total > best[0]:
            self.phase_peak[self.phase] = (self.total, self.seq)

    def track_all(self, value, op: str, kind: str = "") -> None:
        torch = _torch()
        if isinstance(value, torch.Tensor):
            self.track(value, op, kind)
        elif isinstance(value, (list, tuple)):
            for v in value:
                self.track_all(v, op, kind)
        elif isinstance(value, dict):
            for v in value.values():
                self.track_all(v, op, kind)

    @contextmanager
    def pause(self):
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1

    def live_at(self, seq: int) -> list[_Rec]:
        return [r for r in self.records if r.seq <= seq and (r.freed is None or r.freed > seq)]


def _make_mode(tracker: LiveTracker):
    torch = _torch()
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = str(func.overloadpacket).replace("torch.ops.", "").replace("aten::", "aten.")
            if name == "bitsandbytes.gemm_4bit" and not tracker.paused:
                return _bnb_gemm_4bit_decomposed(tracker, *args, **kwargs)
            out = func(*args, **kwargs)
            tracker.track_all(out, name)
            return out

    del torch
    return _Mode()


def _bnb_gemm_4bit_decomposed(tracker: LiveTracker, A, B, shapeB, absmax, blocksize, quant_type, bias=None,
                              absmax_8bit=None, absmax_code=None, absmax_offset=None):
    """bitsandbytes gemm_4bit as its CUDA dequant fallback runs it (M > 1536 tokens), each tensor counted."""
    torch = _torch()
    ops = torch.ops.bitsandbytes
    if absmax_8bit is not None:
        absmax_dq = ops.dequantize_blockwise.default(absmax_8bit, absmax, absmax_code, 256, torch.float32)
        tracker.track(absmax_dq, "bitsandbytes.dequantize_blockwise")
        absmax = torch.add(absmax_dq, absmax_offset)
        tracker.track(absmax, "bitsandbytes.dequantize_blockwise")
    w = ops.dequantize_4bit.default(B, absmax, blocksize, quant_type, shapeB, A.dtype)
    tracker.track(w, "bitsandbytes.dequantize_4bit")
    out = torch.nn.functional.linear(A, w, bias)
    tracker.track(out, "bitsandbytes.gemm_4bit")
    return out


# ----------------------------------------------------------------------------- QLoRA


def bitsandbytes_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means: emulate
        return False
    return True


_NF4 = (-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0)


def _dynamic_map(max_exponent_bits: int = 7, total_bits: int = 8):
    """bitsandbytes ``functional.create_dynamic_map(signed=True)``: the 8-bit code of the absmax values."""
    torch = _torch()
    data: list[float] = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** (i + non_sign_bits - max_exponent_bits) + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data += [0.0, 1.0]
    data += [0.0] * (2 ** total_bits - len(data))
    return torch.tensor(sorted(data), dtype=torch.float32)


class _EmuQuantState:
    """What bitsandbytes' QuantState holds with double quantization (compress_statistics=True)."""

    def __init__(self, weight_2d, blocksize: int = 64):
        torch = _torch()
        w = weight_2d.float().reshape(-1)
        n = w.numel()
        self.shape = tuple(weight_2d.shape)
        self.blocksize = blocksize
        blocks = w.reshape(-1, blocksize)
        absmax = blocks.abs().amax(dim=1).clamp_min(1e-12)
        code = torch.tensor(_NF4)
        idx = (blocks / absmax[:, None]).unsqueeze(-1).sub(code).abs().argmin(-1).to(torch.uint8).reshape(-1)
        self.packed = (idx[0::2] << 4 | idx[1::2]).reshape(-1, 1).contiguous()       # n/2 uint8
        self.code = code                                                            # 16 fp32 (bnb: nf4 code)
        self.offset = absmax.mean()                                                 # fp32 scalar
        centred = (absmax - self.offset).reshape(-1)
        nb2 = math.ceil(centred.numel() / 256)
        pad = torch.zeros(nb2 * 256)
        pad[: centred.numel()] = centred
        self.absmax2 = pad.reshape(nb2, 256).abs().amax(dim=1).clamp_min(1e-12)      # fp32, one per 256 blocks
        self.code2 = _dynamic_map()                                                 # fp32 256 (dynamic map)
        q = (pad.reshape(nb2, 256) / self.absmax2[:, None]).unsqueeze(-1).sub(self.code2).abs().argmin(-1)
        self.absmax8 = q.reshape(-1)[: centred.numel()].to(torch.uint8).contiguous()  # n/64 uint8
        assert self.packed.numel() == (n + 1) // 2

    def tensors(self):
        return [self.code, self.offset, self.absmax2, self.code2, self.absmax8]

    def dequantize_absmax(self, tracker: LiveTracker | None):
        """``dequantize_blockwise`` of the 8-bit absmax: a new fp32 tensor of n/64 (counted)."""
        torch = _torch()
        nb = self.absmax8.numel()
        out = _label(torch.empty(nb, dtype=torch.float32), tracker, "bitsandbytes.dequantize_blockwise")
        with (tracker.pause() if tracker is not None else _nullcontext()), torch.no_grad():
            a = self.code2[self.absmax8.long()] * self.absmax2.repeat_interleave(256)[:nb]
            out.copy_(a)
        return out

    def dequantize_weight(self, absmax, tracker: LiveTracker | None, dtype):
        """``dequantize_4bit`` with the (offset-corrected) fp32 absmax: a new weight in ``dtype`` (counted)."""
        torch = _torch()
        w = _label(torch.empty(self.shape, dtype=dtype), tracker, "bitsandbytes.dequantize_4bit")
        with (tracker.pause() if tracker is not None else _nullcontext()), torch.no_grad():
            hi, lo = (self.packed.reshape(-1) >> 4).long(), (self.packed.reshape(-1) & 15).long()
            idx = torch.stack([hi, lo], 1).reshape(-1)[: w.numel()]
            w.copy_((self.code[idx].reshape(-1, self.blocksize) * absmax[:, None]).reshape(self.shape))
        return w


def _label(t, tracker: LiveTracker | None, op: str):
    """Name the op that allocated ``t`` as bitsandbytes names it (the emulation allocates with aten ops)."""
    rec = tracker.record_of(t) if tracker is not None else None
    if rec is not None:
        rec.op = op
    return t


@contextmanager
def _nullcontext():
    yield


_ACTIVE_TRACKER: list[LiveTracker] = []


def _emulated_classes():
    """EmulatedLinear4bit (a bnb.nn.Linear4bit stand-in) and its PEFT LoRA layer."""
    torch = _torch()
    import peft.tuners.lora.layer as lora_layer

    class _MatMul4Bit(torch.autograd.Function):
        """bitsandbytes MatMul4Bit: saves only the packed weight; dequantizes in forward and backward."""

        @staticmethod
        def forward(ctx, A, B, qs, bias):
            # backends/cuda/ops.py::_dequant_linear_fallback: absmax_dq, absmax = absmax_dq + offset and the
            # dequantized weight all stay referenced until F.linear returns
            tracker = _ACTIVE_TRACKER[-1] if _ACTIVE_TRACKER else None
            absmax_dq = qs.dequantize_absmax(tracker)
            absmax = _label(absmax_dq + qs.offset, tracker, "bitsandbytes.dequantize_blockwise")
            w = qs.dequantize_weight(absmax, tracker, A.dtype)
            out = torch.nn.functional.linear(A, w, bias)
            del absmax_dq, absmax, w
            ctx.qs = qs
            ctx.save_for_backward(B)
            return out

        @staticmethod
        def backward(ctx, grad_output):
            # MatMul4Bit.backward: grad_A = grad_output @ F.dequantize_4bit(B, state); F.dequantize_4bit:
            # absmax = dequantize_blockwise(...); absmax += offset; freed when it returns the weight
            qs = ctx.qs
            tracker = _ACTIVE_TRACKER[-1] if _ACTIVE_TRACKER else None
            absmax = qs.dequantize_absmax(tracker)
            absmax.add_(qs.offset)
            w = qs.dequantize_weight(absmax, tracker, grad_output.dtype)
            del absmax
            grad_a = torch.matmul(grad_output, w) if ctx.needs_input_grad[0] else None
            return grad_a, None, None, None

    class EmulatedLinear4bit(torch.nn.Linear):
        """bnb.nn.Linear4bit(compute_dtype=bf16, quant_type='nf4', compress_statistics=True), emulated."""

        def __init__(self, linear, compute_dtype):
            torch.nn.Module.__init__(self)
            self.in_features, self.out_features = linear.in_features, linear.out_features
            self.compute_dtype = compute_dtype
            self.quant_state = _EmuQuantState(linear.weight.data)
            self.weight = torch.nn.Parameter(self.quant_state.packed, requires_grad=False)
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.data.to(compute_dtype),
                                                                             requires_grad=False)

        def forward(self, x):
            inp_dtype = x.dtype
            x = x.to(self.compute_dtype)
            bias = None if self.bias is None else self.bias.to(self.compute_dtype)
            return _MatMul4Bit.apply(x, self.weight, self.quant_state, bias).to(inp_dtype)

    class EmulatedLoraLinear4bit(lora_layer.Linear):
        """PEFT ``lora.bnb.Linear4bit.forward`` (vanilla LoRA, no autocast): clone, then add the adapter."""

        def forward(self, x, *args, **kwargs):
            result = self.base_layer(x, *args, **kwargs)
            result = result.clone()
            for active_adapter in self.active_adapters:
                if active_adapter not in self.lora_A.keys():
                    continue
                lora_A, lora_B = self.lora_A[active_adapter], self.lora_B[active_adapter]
                dropout, scaling = self.lora_dropout[active_adapter], self.scaling[active_adapter]
                requires_conversion = not torch.is_autocast_enabled()
                if requires_conversion:
                    expected_dtype = result.dtype
                    x = self._cast_input_dtype(x, lora_A.weight.dtype)
                output = lora_B(lora_A(dropout(x))) * scaling
                if requires_conversion:
                    output = output.to(expected_dtype)
                result = result + output
            return result

    return EmulatedLinear4bit, EmulatedLoraLinear4bit


def _is_router(name: str, module) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf == "gate" and ".mlp" in name


def quantize_linears(model, backend: str, compute_dtype) -> list[str]:
    """Replace every module of type exactly nn.Linear (not lm_head, not routers) by a 4-bit one."""
    torch = _torch()
    lm_head = model.get_output_embeddings()
    names = [n for n, m in model.named_modules()
             if type(m) is torch.nn.Linear and m is not lm_head and not _is_router(n, m)]
    if backend == "bnb":
        import bitsandbytes as bnb

        for n in names:
            old = model.get_submodule(n)
            new = bnb.nn.Linear4bit(old.in_features, old.out_features, old.bias is not None, compute_dtype,
                                    compress_statistics=True, quant_type="nf4", quant_storage=torch.uint8)
            new.weight = bnb.nn.Params4bit(old.weight.data.to(compute_dtype), requires_grad=False,
                                           compress_statistics=True, quant_type="nf4", blocksize=64, module=new)
            if old.bias is not None:
                new.bias = torch.nn.Parameter(old.bias.data.to(compute_dtype), requires_grad=False)
            new = new.to("cpu")
            new.requires_grad_(False)
            model.set_submodule(n, new)
    else:
        Emu, _ = _emulated_classes()
        for n in names:
            new = Emu(model.get_submodule(n), compute_dtype)
            new.requires_grad_(False)
            model.set_submodule(n, new)
    return names


def _quant_state_tensors(model) -> list:
    out = []
    for m in model.modules():
        qs = getattr(getattr(m, "weight", None), "quant_state", None) or getattr(m, "quant_state", None)
        if qs is None:
            continue
        if isinstance(qs, _EmuQuantState):
            out += qs.tensors()
            continue
        for t in (getattr(qs, "absmax", None), getattr(qs, "code", None), getattr(qs, "offset", None)):
            if t is not None:
                out.append(t)
        s2 = getattr(qs, "state2", None)
        if s2 is not None:
            out += [t for t in (s2.absmax, s2.code) if t is not None]
    return out


# ----------------------------------------------------------------------------- the step


def _final_norm(model):
    """The model's final norm module (outside the decoder layers)."""
    found = None
    for name, m in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "norm" and ".layers." not in name:
            found = m
    return found


def _install_hooks(model, tracker: LiveTracker, final_norm, lm_head, layers):
    names = {id(m): n for n, m in model.named_modules()}
    handles = []

    def pre(module, args):
        tracker.module_stack.append(names.get(id(module), type(module).__name__))

    def post(module, args, output):
        if tracker.module_stack:
            tracker.module_stack.pop()

    for m in model.modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))

    def head_pre(module, args):
        if tracker.phase == "forward":
            tracker.phase = "head"

    def head_post(module, args, output):
        if tracker.phase == "head":
            tracker.track_all(output, "lm_head")
            for r in _recs_of(tracker, output):
                r.kind = r.kind or "logits"
            tracker.phase = "loss"

    if final_norm is not None:
        handles.append(final_norm.register_forward_pre_hook(head_pre))
    handles.append(lm_head.register_forward_pre_hook(head_pre))
    handles.append(lm_head.register_forward_hook(head_post))

    # backward sub-phases: the gradient of the last layer's output starts the layers' backward, the
    # gradient of the first layer's input (the embedding output) ends it
    def enter(phase, after):
        def hook(grad):
            if tracker.phase in after:
                tracker.phase = phase
        return hook

    def first_tensor(value):
        torch = _torch()
        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
            return value[0]
        return None

    def last_post(module, args, output):
        t = first_tensor(output)
        if tracker.phase == "forward" and t is not None and t.requires_grad:
            t.register_hook(enter("backward_layers", ("backward_head",)))

    def first_pre(module, args, kwargs):
        t = first_tensor(args) if args else kwargs.get("hidden_states")
        if tracker.phase == "forward" and t is not None and t.requires_grad:
            t.register_hook(enter("backward_embedding", ("backward_head", "backward_layers")))

    if layers:
        handles.append(layers[-1].register_forward_hook(last_post))
        handles.append(layers[0].register_forward_pre_hook(first_pre, with_kwargs=True))
    return handles


def _recs_of(tracker: LiveTracker, value):
    torch = _torch()
    if isinstance(value, torch.Tensor):
        r = tracker.record_of(value)
        return [r] if r is not None else []
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in _recs_of(tracker, v)]
    if hasattr(value, "logits"):
        return _recs_of(tracker, value.logits)
    return []


def categorize(r: _Rec) -> str:
    if r.kind in ("weights", "optimizer_state", "inputs"):
        return r.kind
    if r.grad or r.kind == "gradients":
        return "gradients"
    if r.op in _DEQUANT_OPS:
        return "dequantized_weight"
    if r.phase == "optimizer" or r.phase == "zero_grad":
        return "optimizer_transient"
    if r.phase in BACKWARD_PHASES:
        return "recompute" if r.recompute else "backward_transient"
    if r.saved:
        return "saved_activations"
    if r.kind == "logits":
        return "logits"
    if r.phase == "loss":
        return "loss_fp32"
    if r.kind == "checkpoint":
        return "checkpoint_inputs"
    return "forward_transient"


@dataclass
class WholeStep:
    peak_bytes: int
    peak_phase: str
    peak_op: str
    peak_where: str
    breakdown: dict
    phase_peaks: dict
    phase_breakdowns: dict
    top: list
    baseline_bytes: int
    trainable_params: int
    params_total: int
    loss: float
    qlora_backend: str = ""
    quantized_modules: int = 0
    extra: dict = field(default_factory=dict)

    def summary(self, n: int = 12) -> str:
        rows = [f"peak {self.peak_bytes:,} B in {self.peak_phase} ({self.peak_op} @ {self.peak_where})"]
        rows += [f"  {k:20s} {v:>12,d}" for k, v in self.breakdown.items() if v]
        rows += [f"    {r['category']:18s} {r['op'][:34]:34s} {r['where'][-40:]:40s} {r['dtype']:9s} "
                 f"{str(r['shape']):20s} {r['bytes']:>10,d}" for r in self.top[:n]]
        return "\n".join(rows)


def _breakdown(recs: list[_Rec]) -> dict[str, int]:
    out = {c: 0 for c in CATEGORIES}
    for r in recs:
        out[categorize(r)] += r.nbytes
    return out


def _max_live_by_category(records: list[_Rec]) -> dict[str, dict[str, int]]:
    """The most bytes of each category alive at once during the step, per phase of allocation."""
    events: dict[str, list[tuple[int, int]]] = {}
    for r in records:
        c = categorize(r)
        events.setdefault(c, []).append((r.seq, r.nbytes))
        if r.freed is not None:
            events[c].append((r.freed, -r.nbytes))
    out = {}
    for c, ev in events.items():
        live = best = 0
        for _, n in sorted(ev, key=lambda e: (e[0], e[1])):
            live += n
            best = max(best, live)
        out[c] = best
    return out


def measure_whole_step(config_dict: Mapping[str, Any], setup_kwargs: Mapping[str, Any]) -> WholeStep:
    """One steady-state training step with every tensor storage counted (module docstring)."""
    torch = _torch()
    s = dict(setup_kwargs)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(int(s.get("threads", 1)))
    try:
        return _measure(torch, config_dict, s)
    finally:
        torch.set_num_threads(threads_before)


def _build(torch, config_dict, s):
    method = s.get("method", "lora")
    if method not in ("full", "lora", "qlora"):
        raise ValueError(f"method {method!r}: full | lora | qlora")
    precision = s.get("precision", "bf16")
    kernel = s.get("attention_kernel", "sdpa")
    seed = int(s.get("seed", 0))
    model = build_model(config_dict, precision=precision, attention_kernel=kernel, seed=seed)
    params_total = sum(p.numel() for p in model.parameters())
    backend, quantized = "", []
    custom = {}
    if method == "qlora":
        backend = s.get("qlora_backend", "auto")
        if backend == "auto":
            backend = "bnb" if bitsandbytes_available() else "emulated"
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        quantized = quantize_linears(model, backend, dtype)
        if backend == "emulated":
            emu, emu_lora = _emulated_classes()
            custom = {emu: emu_lora}
    if method in ("lora", "qlora"):
        import peft

        cfg = peft.LoraConfig(
            r=int(s.get("lora_rank", 8)), lora_alpha=int(s.get("lora_alpha", 16)),
            target_modules=lora_target_names(model, s.get("lora_targets", "all-linear")),
            lora_dropout=float(s.get("lora_dropout", 0.0)), bias="none", task_type="CAUSAL_LM")
        if custom:
            cfg._register_custom_module(custom)
        if backend == "bnb":
            model.is_loaded_in_4bit = True
        if method == "qlora" and s.get("kbit_prep", False):
            # the QLoRA recipe (QLoRA repo, TRL SFTTrainer for 4-bit models): every non-4-bit
            # parameter (embeddings, norms, lm_head) is cast to fp32
            model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = peft.get_peft_model(model, cfg, autocast_adapter_dtype=s.get("adapter_dtype", "base") == "fp32")
        model.train()
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    if s.get("gradient_checkpointing", False):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, params_total, backend, quantized


def _measure(torch, config_dict, s) -> WholeStep:
    seq_len, micro_batch = int(s.get("seq_len", 64)), int(s.get("micro_batch", 2))
    seed = int(s.get("seed", 0))
    model, params_total, backend, quantized = _build(torch, config_dict, s)
    if backend == "emulated" or s.get("method") == "qlora":
        pass
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt_kind = s.get("optimizer_impl", "fused")
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0,
                            foreach=(opt_kind == "foreach"), fused=(opt_kind == "fused") or None)
    # warm-up: create the AdamW states (steady state), as every step after the first has them
    for p in trainable:
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)

    g = torch.Generator().manual_seed(seed + 1)
    vocab = model.config.vocab_size
    input_ids = torch.randint(0, vocab, (micro_batch, seq_len), generator=g)
    labels = input_ids.clone()

    tracker = LiveTracker()
    # baseline: what lives before the step
    for p in model.parameters():
        tracker.track(p, "parameter", "weights")
    for b in model.buffers():
        tracker.track(b, "buffer", "weights")
    for t in _quant_state_tensors(model):
        tracker.track(t, "quant_state", "weights")
    for st in opt.state.values():
        for v in st.values():
            tracker.track(v, "adamw_state", "optimizer_state")
    tracker.track(input_ids, "input_ids", "inputs")
    tracker.track(labels, "labels", "inputs")
    baseline = tracker.total

    layers = _decoder_layers(model)
    lm_head = model.get_output_embeddings()
    handles = _install_hooks(model, tracker, _final_norm(model), lm_head, layers)

    def grad_hook(p):
        r = tracker.record_of(p.grad)
        if r is not None:
            r.grad = True

    for p in trainable:
        handles.append(p.register_post_accumulate_grad_hook(grad_hook))

    def pack(t):
        r = tracker.record_of(t)
        if r is not None and r.kind == "":
            r.saved = True
        return t

    # checkpointed layers: tag what the checkpoint keeps for the replay
    originals = []
    for layer in layers:
        orig = getattr(layer, "_gradient_checkpointing_func", None)
        if orig is None or not getattr(layer, "gradient_checkpointing", False):
            continue

        def wrapped(fn, *args, __orig=orig, **kwargs):
            import functools

            bound = list(args) + list(kwargs.values())
            if isinstance(fn, functools.partial):
                bound += list(fn.args) + list(fn.keywords.values())
            for r in _recs_of(tracker, bound) + [r for v in bound if isinstance(v, dict)
                                                  for r in _recs_of(tracker, list(v.values()))]:
                if r.kind == "":
                    r.kind = "checkpoint"

            def replayable(*a, __fn=fn, **k):
                # the checkpoint calls this again from backward to recompute the layer (and may stop it
                # early with an exception once the needed tensors exist): mark what it allocates
                if tracker.phase not in BACKWARD_PHASES:
                    return __fn(*a, **k)
                depth = len(tracker.module_stack)
                tracker.in_recompute += 1
                try:
                    return __fn(*a, **k)
                finally:
                    tracker.in_recompute -= 1
                    del tracker.module_stack[depth:]

            return __orig(replayable, *args, **kwargs)

        originals.append((layer, orig))
        layer._gradient_checkpointing_func = wrapped

    mode = _make_mode(tracker)
    _ACTIVE_TRACKER.append(tracker)
    try:
        with mode, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            tracker.phase = "forward"
            # HF Trainer bf16=True / accelerate mixed_precision="bf16": forward and loss under autocast
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(s.get("autocast", False))):
                out = model(input_ids=input_ids, labels=labels, use_cache=False)
                loss = out.loss
                del out
            tracker.phase = "backward_head"
            loss.backward()
            tracker.phase = "optimizer"
            opt.step()
            tracker.phase = "zero_grad"
            opt.zero_grad(set_to_none=True)
            loss_value = float(loss.detach())
            del loss
    finally:
        _ACTIVE_TRACKER.pop()
        for h in handles:
            h.remove()
        for layer, orig in originals:
            layer._gradient_checkpointing_func = orig

    peak_recs = tracker.live_at(tracker.peak_seq)
    peak_rec = next((r for r in tracker.records if r.seq == tracker.peak_seq), None)
    top = sorted(peak_recs, key=lambda r: -r.nbytes)
    phase_breakdowns = {ph: _breakdown(tracker.live_at(seq)) for ph, (_, seq) in tracker.phase_peak.items()
                        if ph in PHASES}
    return WholeStep(
        peak_bytes=tracker.peak,
        peak_phase=peak_rec.phase if peak_rec else "",
        peak_op=peak_rec.op if peak_rec else "",
        peak_where=peak_rec.where if peak_rec else "",
        breakdown=_breakdown(peak_recs),
        phase_peaks={ph: b for ph, (b, _) in tracker.phase_peak.items() if ph in PHASES},
        phase_breakdowns=phase_breakdowns,
        top=[{"category": categorize(r), "op": r.op, "where": r.where, "dtype": r.dtype, "shape": r.shape,
              "bytes": r.nbytes, "phase": r.phase} for r in top if categorize(r) not in ("weights",)][:40],
        baseline_bytes=baseline,
        trainable_params=sum(p.numel() for p in trainable),
        params_total=params_total,
        loss=loss_value,
        qlora_backend=backend,
        quantized_modules=len(quantized),
        extra={"attn_implementation": ATTENTION_IMPLEMENTATIONS[s.get("attention_kernel", "sdpa")],
               "num_layers": len(layers), "max_live_by_category": _max_live_by_category(tracker.records)},
    )
