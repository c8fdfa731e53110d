"""Fast, exact answers to "does this layout fit?" for the planner, from few calls of the memory model.

``training.finetune_memory`` costs milliseconds per call; the planner asks about thousands of layouts
(GPU counts × tp × ZeRO × offload × checkpointing × micro-batch, for every GPU type of the catalog).
This module answers from a handful of calls per layout family, using the structure of the model:

* The model reads only ``memory_bytes``, ``name`` and ``node_gpus_max`` of the GPU, so results on a
  reference GPU (unbounded memory, one GPU per node) serve every GPU type (``memory_on_gpu``).
* With one pipeline stage, every phase of a step (loss, layer_backward, backward_end,
  optimizer_step) is exactly

      phase_p(tp, dp, mb, gc) = S_p(tp, dp) + [p ∈ {loss, layer_backward}] · mb · (a_{p,gc} + b_{p,gc} / tp)
      S_p(tp, dp) = c0 + c1 / tp + c2 / dp + c3 / (tp · dp)

  within a family (ZeRO stage, offload, expert-parallel mode): model states split by tp and shard by
  dp (ZeRO), activations scale with a micro-batch's tokens and split by tp, and do not depend on ZeRO
  or offload (the slopes a, b are shared by all families). Weights, optimizer states, buffers,
  offloaded host bytes and paged states follow the same four-term form.

A family is fitted from four calls (tp ∈ {1, 2} × dp ∈ {d1, d2}) and confirmed on a fifth, held-out
layout; the activation slopes cost six calls once per model setup. A family that does not pass the
check (a capped bucket, say) and every pipeline-parallel layout fall back to direct calls, first
answered where possible by monotonicity (bytes do not grow with dp nor shrink with the micro-batch).
``tests/test_planner.py`` compares predictions with direct calls.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmsizing.errors import ScenarioError
from llmsizing.specs import GpuSpec, ModelSpec
from llmsizing.training import memory as training

PHASES = ("loss", "layer_backward", "backward_end", "optimizer_step")
ACT_PHASES = ("loss", "layer_backward")
REFERENCE_MEMORY_BYTES = 2**62
FIT_TOLERANCE = 1e-9          # relative; the structure is exact, so this only absorbs float rounding
_FIELDS = ("weights", "optimizer_base", "buffers", "host", "paged")


def memory_on_gpu(ref: Any, gpu: GpuSpec, gpus: int) -> Any:
    """Re-target a ``FinetuneMemory`` computed on the reference GPU to a real GPU.

    As in ``training.finetune_memory``: fits = reserved + overhead ≤ memory; paged optimizer states
    stay on the GPU while they fit in what is free, the rest pages to host RAM; host RAM covers
    min(gpus, node_gpus_max) processes. ``tests/test_planner.py`` checks this equals a direct call.
    """
    need = ref.reserved + ref.overhead
    fits = need <= gpu.memory_bytes
    free = max(0.0, gpu.memory_bytes - need)
    paged_total = ref.paged_optimizer
    resident = min(paged_total, free)
    procs = min(gpus, gpu.node_gpus_max or gpus)
    host = (ref.host_ram_bytes + (paged_total - resident)) * procs
    notes = tuple(n for n in ref.notes if not str(n).startswith("paged optimizer"))
    if paged_total > resident:
        notes += (f"paged optimizer: {paged_total - resident:.0f} B of states page to host memory",)
    reason = "" if fits else (
        f"needs {need / 2**30:.1f} GiB per GPU ({ref.phase} phase, stage {ref.stage}) but {gpu.name} has "
        f"{gpu.memory_bytes / 2**30:.1f} GiB")
    return replace(ref, total=need + resident, gpu_memory_bytes=gpu.memory_bytes, fits=fits, reason=reason,
                   host_ram_bytes=host, paged_optimizer=resident, notes=notes)


def _solve4(points: list[tuple[int, int, float]]) -> tuple[float, float, float, float]:
    """Coefficients (c0, c1, c2, c3) of c0 + c1/tp + c2/dp + c3/(tp·dp) through four points on
    tp ∈ {t1, t2} × dp ∈ {d1, d2} (bilinear in x = 1/tp, y = 1/dp)."""
    v = {(t, d): val for t, d, val in points}
    (t1, t2), (d1, d2) = sorted({t for t, _, _ in points}), sorted({d for _, d, _ in points})
    x1, x2, y1, y2 = 1.0 / t1, 1.0 / t2, 1.0 / d1, 1.0 / d2
    f11, f21, f12, f22 = v[(t1, d1)], v[(t2, d1)], v[(t1, d2)], v[(t2, d2)]
    c3 = (f11 - f21 - f12 + f22) / ((x1 - x2) * (y1 - y2))
    c1 = (f11 - f21) / (x1 - x2) - c3 * y1
    c2 = (f11 - f12) / (y1 - y2) - c3 * x1
    c0 = f11 - c1 * x1 - c2 * y1 - c3 * x1 * y1
    return c0, c1, c2, c3


def _solve2(points: list[tuple[int, float]]) -> tuple[float, float, float, float]:
    """c0 + c1/tp through two points (dp fixed at 1); returned in the four-term form."""
    (t1, f1), (t2, f2) = sorted(points)
    c1 = (f1 - f2) / (1.0 / t1 - 1.0 / t2)
    return f1 - c1 / t1, c1, 0.0, 0.0


def _eval4(c: tuple[float, float, float, float], tp: int, dp: int) -> float:
    return c[0] + c[1] / tp + c[2] / dp + c[3] / (tp * dp)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= FIT_TOLERANCE * max(1.0, abs(a), abs(b))


class _Family:
    """One fitted family: phase and field coefficients, fixed ratios, and a reference result to copy."""

    def __init__(self, S: dict, F: dict, ratio: float, overhead_multi: float, template: Any):
        self.S, self.F, self.ratio, self.overhead_multi, self.template = S, F, ratio, overhead_multi, template

    def phases(self, tp: int, dp: int, mb: int, gc: bool, acts: dict) -> dict[str, float]:
        out = {}
        for p in PHASES:
            v = _eval4(self.S[p], tp, dp)
            if p in ACT_PHASES:
                a, b = acts[(p, gc)]
                v += mb * (a + b / tp)
            out[p] = v
        return out


class MemoryOracle:
    """Memory of layouts for one (model, memory-relevant setup, assumptions), shared by every GPU type.

    Keys are (tp, pp, dp, ep, zero, offload, gradient_checkpointing, micro_batch, grad_accumulation).
    ``setup_kwargs`` are the ``FinetuneSetup`` fields that stay fixed (method, precision, optimizer,
    seq_len, lora_rank, lora_targets, and qlora_quant for QLoRA).
    """

    def __init__(self, spec: ModelSpec, setup_kwargs: dict, assumptions: Any, gpu: GpuSpec):
        self.spec, self.kw, self.a = spec, dict(setup_kwargs), assumptions
        self.tr = training
        self.ref_gpu = replace(gpu, memory_bytes=REFERENCE_MEMORY_BYTES, node_gpus_max=1, name="reference GPU")
        self.exact: dict[tuple, Any] = {}
        self.points: dict[tuple, dict[tuple[int, int], Any]] = {}
        self.families: dict[tuple, _Family | None | str] = {}
        self.acts: dict[str, dict | None] = {}
        self.overhead_single: float | None = None
        self.valid: dict[tuple, bool] = {}
        self.calls = 0

    # ------------------------------------------------------------------ direct calls
    def setup(self, tp, pp, dp, ep, zero, offload, gc, mb, ga=1):
        return self.tr.FinetuneSetup(micro_batch=mb, gradient_checkpointing=gc, zero=zero, offload=offload, tp=tp,
                                     pp=pp, dp=dp, ep=ep, grad_accumulation=ga, **self.kw)

    def get(self, key: tuple) -> Any:
        """Exact memory on the reference GPU (memoized); None for an invalid layout."""
        if key not in self.exact:
            self.calls += 1
            try:
                m = self.tr.finetune_memory(self.spec, self.setup(*key), self.ref_gpu, self.a)
            except ScenarioError:
                m = None
            self.exact[key] = m
            self.points.setdefault(self._cls(key), {})[(key[2], key[7])] = m
        return self.exact[key]

    @staticmethod
    def _cls(key: tuple) -> tuple:
        tp, pp, dp, ep, zero, offload, gc, mb, ga = key
        return (tp, pp, ep, zero, offload, gc, ga, dp == 1, dp % ep == 0)

    @staticmethod
    def need(m: Any) -> float:
        """Device bytes a result needs to fit: reserved + overhead."""
        return m.reserved + m.overhead

    def is_valid(self, key: tuple) -> bool:
        """Whether ``training.check_layout`` accepts the layout (cached by what it looks at)."""
        tp, pp, dp, ep, zero, offload, gc, mb, ga = key
        vkey = (tp, pp, ep, (dp * tp) % ep == 0, zero, offload)
        if vkey not in self.valid:
            try:
                self.tr.check_layout(self.spec, self.setup(*key))
                self.valid[vkey] = True
            except ScenarioError:
                self.valid[vkey] = False
        return self.valid[vkey]

    # ------------------------------------------------------------------ families
    def _family_key(self, key: tuple, per_tp: bool = False) -> tuple | None:
        """(ZeRO, offload, ep, accumulation, dp = 1 only, tp or None); None for pipeline layouts."""
        tp, pp, dp, ep, zero, offload, gc, mb, ga = key
        if pp != 1 or dp % ep:
            return None
        return (zero, offload, ep, ga, zero == 0 and dp == 1, tp if per_tp else None)

    @staticmethod
    def _design_dps(ep: int, dp1_only: bool) -> tuple[int, int, int]:
        """Two design dps and a held-out one, multiples of ep (ZeRO shards experts over dp / ep)."""
        if dp1_only:
            return 1, 1, 1
        return 2 * ep, 4 * ep, 16 * ep

    def _acts(self, fkey: tuple) -> dict | None:
        """Activation slopes a, b per (phase, checkpointing) for an expert-parallel degree (six calls once)."""
        zero, offload, ep, ga, dp1, _ = fkey
        if ep in self.acts:
            return self.acts[ep]
        d1 = self._design_dps(ep, dp1)[0]
        out: dict = {}
        for gc in (True, False):
            diffs = {}
            for tp in (1, 2):
                m1 = self.get((tp, 1, d1, ep, zero, offload, gc, 1, ga))
                m2 = self.get((tp, 1, d1, ep, zero, offload, gc, 2, ga))
                if m1 is None or m2 is None:
                    self.acts[ep] = None
                    return None
                diffs[tp] = {p: m2.phases[p] - m1.phases[p] for p in ACT_PHASES}
            for p in ACT_PHASES:
                b = (diffs[1][p] - diffs[2][p]) / (1.0 - 0.5)
                out[(p, gc)] = (diffs[1][p] - b, b)
        self.acts[ep] = out
        return out

    def _fields(self, m: Any) -> dict[str, float]:
        temp = m.phases["optimizer_step"] - m.phases["backward_end"]
        opt = m.optimizer - (temp if m.phase == "optimizer_step" else 0.0)
        return {"weights": m.weights, "optimizer_base": opt, "buffers": m.buffers, "host": m.host_ram_bytes,
                "paged": m.paged_optimizer}

    def family(self, key: tuple) -> _Family | None:
        """The fitted family of ``key``: all tp at once, else one per tp (None: use direct calls)."""
        for per_tp in (False, True):
            fkey = self._family_key(key, per_tp)
            if fkey is None:
                return None
            if fkey not in self.families:
                self.families[fkey] = "building"
                fam = self._build(fkey, key[0])
                self.families[fkey] = fam if fam is not None else "direct"
            f = self.families[fkey]
            if isinstance(f, _Family):
                return f
        return None

    def _build(self, fkey: tuple, tp_query: int) -> _Family | None:
        """Fit a family from 4 calls (tp ∈ {1, 2} × two dps), or 2 for one tp (one dp for dp = 1 only),
        and confirm it on a held-out layout (wider tp, another dp, micro-batch 2, no checkpointing)."""
        zero, offload, ep, ga, dp1, tp_only = fkey
        acts = self._acts(fkey)
        if acts is None:
            return None
        d1, d2, dv = self._design_dps(ep, dp1)
        tps = (tp_only,) if tp_only is not None else (1, 2)
        grid = [(t, d) for t in tps for d in sorted({d1, d2})]
        res = {}
        for t, d in grid:
            m = self.get((t, 1, d, ep, zero, offload, True, 1, ga))
            if m is None:
                return None
            res[(t, d)] = m

        def fit(values: list[tuple[int, int, float]]) -> tuple[float, float, float, float]:
            if tp_only is not None:
                if dp1:
                    return values[0][2], 0.0, 0.0, 0.0
                (_, da, fa), (_, db, fb) = sorted(values, key=lambda x: x[1])
                c2 = (fa - fb) / (1.0 / da - 1.0 / db)
                return fa - c2 / da, 0.0, c2, 0.0
            return _solve2([(t, v) for t, _, v in values]) if dp1 else _solve4(values)

        S = {}
        for p in PHASES:
            pts = []
            for (t, d), m in res.items():
                v = m.phases[p]
                if p in ACT_PHASES:
                    a, b = acts[(p, True)]
                    v -= a + b / t
                pts.append((t, d, v))
            S[p] = fit(pts)
        F = {name: fit([(t, d, self._fields(m)[name]) for (t, d), m in res.items()]) for name in _FIELDS}
        any_m = next(iter(res.values()))
        ratio = any_m.reserved / any_m.allocated if any_m.allocated > 0 else 1.0
        overhead = max(m.overhead for m in res.values())
        fam = _Family(S, F, ratio, overhead, any_m)
        if tp_only is not None:
            tv = tp_only
        else:
            tv = 4 if self.spec.num_heads % 4 == 0 else 2
        check_key = (tv, 1, dv, ep, zero, offload, False, 2, ga)
        exact = self.get(check_key)
        if exact is None:
            return None
        pred = self._assemble(fam, acts, check_key)
        for p in PHASES:
            if not _close(pred.phases[p], exact.phases[p]):
                return None
        for name in ("weights", "gradients", "optimizer", "activations", "buffers", "host_ram_bytes",
                     "paged_optimizer", "reserved"):
            if not _close(getattr(pred, name), getattr(exact, name)):
                return None
        return fam

    def _overhead(self, fam: _Family, tp: int, dp: int) -> float:
        if tp * dp > 1:
            return fam.overhead_multi
        if self.overhead_single is None:
            m = self.get((1, 1, 1, 1, 0, "none", True, 1, 1))
            self.overhead_single = m.overhead if m is not None else fam.overhead_multi
        return self.overhead_single

    def _assemble(self, fam: _Family, acts: dict, key: tuple) -> Any:
        """A ``FinetuneMemory`` on the reference GPU for ``key``, from the family's coefficients."""
        tp, pp, dp, ep, zero, offload, gc, mb, ga = key
        ph = fam.phases(tp, dp, mb, gc, acts)
        phase = max(PHASES, key=lambda p: ph[p])
        allocated = ph[phase]
        f = {name: _eval4(c, tp, dp) for name, c in fam.F.items()}
        base = _eval4(fam.S["loss"], tp, dp)          # weights + persistent gradients + optimizer + buffers
        persistent = base - f["weights"] - f["optimizer_base"] - f["buffers"]
        transient = ph["backward_end"] - base
        temp = ph["optimizer_step"] - ph["backward_end"]
        in_backward = phase in ("backward_end", "optimizer_step")
        gradients = persistent + (transient if in_backward else 0.0)
        optimizer = f["optimizer_base"] + (temp if phase == "optimizer_step" else 0.0)
        activations = 0.0 if in_backward else ph[phase] - base
        reserved = allocated * fam.ratio
        overhead = self._overhead(fam, tp, dp)
        paged = f["paged"]
        return replace(fam.template, weights=f["weights"], gradients=gradients, optimizer=optimizer,
                       activations=activations, buffers=f["buffers"], overhead=overhead, allocated=allocated,
                       reserved=reserved, total=reserved + overhead + paged, fits=True, reason="",
                       host_ram_bytes=f["host"], fragmentation=reserved - allocated, paged_optimizer=paged,
                       phase=phase, stage=0, phases=ph, activation_parts={}, notes=())

    # ------------------------------------------------------------------ questions
    def memory(self, key: tuple) -> Any:
        """Memory on the reference GPU: from the family when fitted, else a direct call; None if invalid."""
        if key in self.exact:
            return self.exact[key]
        if not self.is_valid(key):
            return None
        fam = self.family(key)
        if fam is not None:
            return self._assemble(fam, self.acts[key[3]], key)
        return self.get(key)

    def need_bytes(self, key: tuple) -> float | None:
        """Device bytes the layout needs (reserved + overhead); None for an invalid layout."""
        if key not in self.exact:
            if not self.is_valid(key):
                return None
            fam = self.family(key)
            if fam is not None:
                tp, pp, dp, ep, zero, offload, gc, mb, ga = key
                ph = fam.phases(tp, dp, mb, gc, self.acts[ep])
                return max(ph.values()) * fam.ratio + self._overhead(fam, tp, dp)
        m = self.memory(key)
        return None if m is None else self.need(m)

    def fits_exact(self, key: tuple, memory_bytes: float) -> bool:
        """Fit by a direct call (to confirm a prediction)."""
        m = self.get(key)
        return m is not None and self.need(m) <= memory_bytes

    def fits_gpu(self, key: tuple, memory_bytes: float) -> bool:
        """Whether the layout fits a GPU of ``memory_bytes`` (device level)."""
        if key not in self.exact and self.family(key) is None:
            dp, mb = key[2], key[7]
            for (dpk, mbk), m in self.points.get(self._cls(key), {}).items():
                if m is None:
                    return False
                if dpk <= dp and mbk >= mb and self.need(m) <= memory_bytes:
                    return True
                if dpk >= dp and mbk <= mb and self.need(m) > memory_bytes:
                    return False
        need = self.need_bytes(key)
        return need is not None and need <= memory_bytes


def oracle_key(spec: ModelSpec, setup_kwargs: dict, overrides: dict) -> tuple:
    return (spec, tuple(sorted(setup_kwargs.items())), tuple(sorted(overrides.items())))


_ORACLES: dict[tuple, MemoryOracle] = {}
_MAX_ORACLES = 4096


def oracle_for(spec: ModelSpec, setup_kwargs: dict, assumptions: Any, gpu: GpuSpec) -> MemoryOracle:
    """The shared oracle of a (model, fixed setup fields, assumption overrides)."""
    key = oracle_key(spec, setup_kwargs, assumptions.overrides)
    o = _ORACLES.get(key)
    if o is None:
        if len(_ORACLES) >= _MAX_ORACLES:
            _ORACLES.clear()
        o = _ORACLES[key] = MemoryOracle(spec, setup_kwargs, assumptions, gpu)
    return o


def clear() -> None:
    _ORACLES.clear()


__all__ = ["MemoryOracle", "memory_on_gpu", "oracle_for", "clear"]
