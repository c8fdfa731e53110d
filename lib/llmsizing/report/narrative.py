"""Report text: executive summary, explanations, methodology, audit and validation text.

Every function takes a :class:`~llmsizing.report.study.Study` and returns a :class:`Narrative`
(Markdown that a notebook displays as formatted text) or plain data. No estimation happens
here: numbers come from the study and are only formatted (always with GiB or GB, hours, USD).

Customer-supplied strings (customer, title, notes) and catalog names are escaped with
:func:`esc` before they enter Markdown, so ``<script>`` shows as text and cannot become markup,
and ``$`` cannot start a formula.
"""

from __future__ import annotations

import math
from typing import Any

from llmsizing.planner.audit import AuditRow
from llmsizing.report import fmt
from llmsizing.report.fmt import gpu_label
from llmsizing.report.i18n import N_, _, ngettext
from llmsizing.report.study import Study
from llmsizing.text import clean_text
from llmsizing.training.frameworks import framework_profile
from llmsizing.validation.run import OURS, head_to_head

__all__ = [
    "Narrative",
    "assumptions_intro",
    "audit_section",
    "esc",
    "finetune_intro",
    "methodology",
    "summary_finetune",
    "summary_intro",
    "summary_serving",
    "serving_intro",
    "users_vs_weights_text",
    "validation_summary",
]

# Characters that could start Markdown markup or a MathJax formula inside a line of text, and the
# HTML-special ones, each replaced in ONE pass (escaping twice showed O'Brien as O&#x27;Brien).
_MD_SPECIAL = {**{c: f"&#{ord(c)};" for c in "\\`*_{}[]#|~$"},
               "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}


class Narrative(str):
    """Markdown text that displays formatted in a notebook (and so in the HTML and PDF)."""

    def _repr_markdown_(self) -> str:
        return str(self)


def esc(text: Any) -> str:
    """Escape a string for Markdown: sanitize it (llmsizing.text), then replace HTML, Markdown and math
    characters by numeric entities in one pass."""
    return "".join(_MD_SPECIAL.get(c, c) for c in clean_text(text))


def _gib(n_bytes: float, digits: int = 1) -> str:
    return fmt.gib(n_bytes, digits, with_unit=True)


def _usd(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return _("no catalog price")
    return fmt.usd(x, with_unit=True)


def method_label(method: str) -> str:
    """'LoRA', 'QLoRA' or 'full fine-tuning'."""
    return fmt.method_name(method)


def _deadline(hours: float) -> str:
    return fmt.deadline(hours)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return _("{items} and {last}").format(items=_(", ").join(items[:-1]), last=items[-1])


# --------------------------------------------------------------------------- executive summary


# --------------------------------------------------------------------------- executive summary


def _users_sentence(study: Study) -> str:
    sv = study.serving
    n = sv.users
    if not sv.models:
        return ""
    big = max(sv.models, key=lambda m: m.users_comparison["weights_bytes"])
    c = big.users_comparison
    ratios = [m.users_comparison["naive_over_actual"] for m in sv.models]
    if n == 1:
        return _("One user needs the weights once plus one KV cache; each further user would add only its own "
                 "KV cache, not another copy of the weights.")
    return _("**Does {n} users mean {n} × the weights? No.** The weights are loaded once and shared by every user; "
             "each user adds only its own KV cache. {model} holds {weights} ({precision}) of weights and {kv} of KV "
             "cache per user at {tokens} tokens, so {n} users need {total}, not {guess}. Across the models the guess "
             "overstates memory {range} times.").format(
        n=fmt.integer(n), model=esc(big.name), weights=_gib(c["weights_bytes"]),
        precision=fmt.precision_name(big.preferred.precision), kv=_gib(c["kv_cache_bytes_per_user"], 2),
        tokens=fmt.tokens(c["context_tokens"]), total=_gib(c["total_bytes"]), guess=_gib(c["naive_guess_bytes"]),
        range=_range(ratios, lambda r: fmt.number(r, 1)))


def _range(values: list[float], f: Any) -> str:
    lo, hi = min(values), max(values)
    return f(lo) if f(lo) == f(hi) else _("{lo} to {hi}").format(lo=f(lo), hi=f(hi))


def _finetune_extremes(study: Study) -> str:
    """One sentence per method about the largest data size: GPUs and cost ranges, misses."""
    ft = study.finetune
    largest = ft.data_sizes[-1]
    models = list(dict.fromkeys(c.model for c in ft.matrix))
    sentences = []
    for method in ft.methods:
        cells = [ft.cell(m, method, largest) for m in models]
        ok = [c for c in cells if c.ok and c.plan.fits]
        met = [c for c in ok if c.plan.meets_deadline]
        miss = [c for c in ok if not c.plan.meets_deadline]
        bits = []
        if met:
            bits.append(_("{gpus} GPUs").format(gpus=_range([c.plan.gpus for c in met], fmt.integer)))
            costs = [c.plan.cost_usd for c in met if c.plan.cost_usd is not None]
            if costs:
                bits.append(_("{cost} per run").format(cost=_range(costs, _usd)))
        if miss:
            names = _join([esc(ft.model_names.get(c.model, c.model)) for c in miss])
            bits.append(_("{models} cannot finish within {deadline} on any GPU count searched").format(
                models=names, deadline=_deadline(ft.deadline_hours)))
        if len(ok) < len(cells):
            k = len(cells) - len(ok)
            bits.append(ngettext("{n} model cannot be trained this way at all",
                                 "{n} models cannot be trained this way at all", k).format(n=k))
        if bits:
            label = method_label(method)
            sentences.append(_("{method} on {data}: {facts}.").format(
                method=label[0].upper() + label[1:], data=esc(largest), facts=_("; ").join(bits)))
    return " ".join(sentences)


def _one_card_sentence(study: Study) -> str:
    """A single-GPU scenario says how long its data takes on that one card."""
    ft = study.finetune
    if not ft.one_gpu:
        return ""
    out = []
    for c in ft.one_gpu:
        text = _("{method} on {data} takes {time}").format(method=method_label(c.method), data=esc(c.data),
                                                           time=fmt.hours(c.plan.hours))
        if not c.plan.meets_deadline:
            text += " " + _("(more than the deadline of {deadline})").format(deadline=_deadline(ft.deadline_hours))
        out.append(text)
    return _("On one {gpu}: {facts}.").format(gpu=esc(gpu_label(ft.gpu)), facts=_("; ").join(out))


def summary_intro(study: Study) -> Narrative:
    """Opening paragraph of the executive summary: what was asked, for whom, and the scenario's notes."""
    sc = study.scenario
    asks = []
    if study.serving is not None:
        sv = study.serving
        asks.append(ngettext("serving {n} model to {users} concurrent users with {tokens} tokens of context each",
                             "serving {n} models to {users} concurrent users with {tokens} tokens of context each",
                             len(sv.models)).format(n=len(sv.models), users=fmt.integer(sv.users),
                                                    tokens=fmt.tokens(sv.context_tokens)))
    if study.finetune is not None:
        ft = study.finetune
        what = _("them") if study.serving is not None else _join([esc(n) for n in ft.model_names.values()])
        asks.append(_("fine-tuning {what} on {data} of data within {deadline} per run").format(
            what=what, data=_join([esc(d) for d in ft.data_sizes]), deadline=_deadline(ft.deadline_hours)))
    text = (_("This report, prepared for {customer}, sizes the hardware for {asks}.") if sc.customer
            else _("This report sizes the hardware for {asks}.")).format(customer=esc(sc.customer), asks=_join(asks))
    out = [text + " " + _("Every figure is an estimate from the models' published architectures, the GPUs' "
                          "datasheets and the assumptions listed in Appendix A; the tables below are what to buy, "
                          "the sections after them the detail.")]
    notes = sc.notes.strip()
    if notes:
        out.append(_("*Notes:* {notes}").format(notes=esc(notes)))
    return Narrative("\n\n".join(out))


def summary_serving(study: Study) -> Narrative:
    """The executive summary's serving conclusion: weights are shared, the KV cache is per user."""
    return Narrative(_users_sentence(study))


def summary_finetune(study: Study) -> Narrative:
    """The executive summary's fine-tuning conclusion (largest data size per method) and the audit."""
    out = [_one_card_sentence(study), _finetune_extremes(study)]
    if study.audit is not None:
        summary = audit_summary(study.audit)
        if summary:
            out.append(_("**The hand-made table.** {summary} Details: the audit section.").format(summary=esc(summary)))
    return Narrative("\n\n".join(p for p in out if p))


# --------------------------------------------------------------------------- section texts


def serving_intro(study: Study) -> Narrative:
    sv = study.serving
    sc = study.scenario
    prec = (_("each model in its published checkpoint format") if sc.precision == "native"
            else _("weights in {precision}").format(precision=fmt.precision_name(sc.precision)))
    return Narrative(_(
        "Each model is sized for {users} concurrent users, each holding {tokens} tokens of context (prompt plus "
        "answer; reasoning models write long answers), served by {engine} with {precision}. For every candidate GPU "
        "type the estimator finds the smallest layout (tensor parallel inside a node, then pipeline stages across "
        "nodes) whose memory holds the weights, the runtime reserve and a KV-cache pool large enough for all "
        "users.").format(users=fmt.integer(sv.users), tokens=fmt.tokens(sv.context_tokens), engine=esc(sv.engine),
                         precision=prec))


def users_vs_weights_text(study: Study) -> Narrative:
    n = fmt.integer(study.serving.users)
    return Narrative(_(
        "A common rule of thumb says {n} users need {n} × the model's weights. They do not: a serving engine loads "
        "the weights once and runs every user's request through the same copy, batching them together. What each "
        "user adds is its KV cache — the attention keys and values of every token in its context — which grows "
        "with the context length and the model's attention layout (grouped-query attention shares key/value heads; "
        "DeepSeek-R1's multi-head latent attention caches one compressed latent per token and layer). The table "
        "shows both numbers.").format(n=n))


def finetune_intro(study: Study) -> Narrative:
    ft = study.finetune
    sc = study.scenario
    return Narrative(_(
        "For each model, method and data size the planner searches GPU counts on {gpu} (1, 2, 4, then whole nodes) "
        "and, for each count, every layout that fits in GPU memory (tensor, pipeline and data parallel degrees, ZeRO "
        "stage, offload, gradient checkpointing, micro-batch). It reports the smallest count whose fastest layout "
        "finishes within {deadline}, including loading the model, tokenizing the data and saving checkpoints. "
        "Training runs {epochs} epoch(s) at {seq_len} tokens per sequence with the {optimizer} optimizer in "
        "{precision}; LoRA and QLoRA use rank {rank} on all linear layers. Data sizes are bytes of raw text "
        "({language}), converted to tokens with each model's tokenizer.").format(
        gpu=esc(gpu_label(ft.gpu)), deadline=_deadline(ft.deadline_hours), epochs=fmt.value(sc.epochs, ""),
        seq_len=fmt.tokens(sc.seq_len), optimizer=esc(sc.optimizer), precision=fmt.precision_name(sc.train_precision),
        rank=sc.lora_rank, language=esc(fmt.language_name(sc.language)))
        + " " + _("Memory assumes the {framework} training stack; a layout counts as fitting only when the high end "
                  "of its memory range (from published runs the model was not fitted on) plus a safety margin fits "
                  "in GPU memory.").format(framework=esc(framework_profile(sc.framework).label)))


def assumptions_intro(study: Study) -> Narrative:
    n = len(study.assumptions.table(only_used=True))
    return Narrative(_(
        "The estimates above read the {n} named assumptions below — efficiencies, overheads, bytes per token, prices "
        "and limits — each with its source. An analyst changes one under the key assumptions of the scenario file "
        "(a name and its new value) or in the notebook's parameters, re-runs the report, and the numbers change "
        "accordingly; changed values are marked with their defaults.").format(n=n))


# --------------------------------------------------------------------------- methodology


_METHOD_COMMON = (N_(
    "**Parameters and weights.** Parameter counts come from each model's config.json, layer by layer (embeddings, "
    "attention, MLP or experts, norms, output head), and match the published totals to the parameter. Weight memory "
    "= Σ parameters × bytes per parameter of the storage format, including quantization scales (FP8 block scales, "
    "GPTQ/AWQ group scales, NF4 constants); layers that stay in 16-bit under a quantization (embeddings, output "
    "head, norms, routers) are counted as such. Mixture-of-experts models hold all experts in memory (total "
    "parameters) but compute with the active ones."),)

_METHOD_SERVING = (
    N_("**KV cache.** Per token and layer, grouped-query attention caches 2 × kv_heads × head_dim values (keys and "
       "values); DeepSeek's multi-head latent attention caches one latent of kv_lora_rank + qk_rope_head_dim = 512 "
       "+ 64 = 576 values, as vLLM and SGLang do (DeepSeek-V2 paper, arXiv:2405.04434 §2.1). KV bytes per user = "
       "values per token and layer × layers × bytes per value × context tokens."),
    N_("**Serving memory and GPU count.** vLLM profiles one forward pass and sets the KV-cache pool to total memory "
       "× gpu_memory_utilization − (weights + activation peak + non-PyTorch memory) (vLLM "
       "gpu_worker.determine_available_memory); SGLang and transformers are modelled after their own start-up "
       "logic. The smallest tensor-parallel degree (then pipeline stages across nodes) whose pool holds users × "
       "context tokens is chosen. Weights are sharded the way vLLM shards them (column/row-parallel linears and "
       "vocabulary ÷ TP; MLA down-projections and norms replicated)."),
    N_("**Speed.** A decode step takes the longer of bytes read ÷ (memory bandwidth × efficiency) and FLOP ÷ (peak "
       "× efficiency), plus tensor-parallel all-reduces and a fixed per-step overhead; each user gets one token per "
       "step. Bytes read = the weights on the GPU (for MoE only the experts the batch touches, E·(1 − (1 − k/E)^B)) "
       "plus every user's KV cache. Time to first token = the prompt's FLOP (2 per active weight per token plus "
       "attention) at the same efficiencies. These are roofline estimates, not measurements."),
    N_("**Cost of serving.** Nodes = ⌈GPUs ÷ GPUs per instance⌉; cost per hour = nodes × the instance's on-demand "
       "price (catalog, with provider, region and date in the appendix)."),
)

_METHOD_FINETUNE = (
    N_("**Fine-tuning memory.** Model states follow ZeRO (Rajbhandari et al. 2020, arXiv:1910.02054 §3): mixed "
       "precision with AdamW costs 2 (BF16 weight) + 2 (gradient) + 12 (FP32 master weight and two moments) = 16 "
       "bytes per trainable parameter; pure BF16 8 bytes; ZeRO stages 1-3 divide optimizer states, gradients and "
       "weights by the data-parallel degree. LoRA trains rank-r adapters only (r × (in + out) per adapted linear); "
       "QLoRA stores the frozen base in 4-bit NF4 with double-quantized constants (Dettmers et al. 2023, "
       "arXiv:2305.14314 §3). Activations are the tensors autograd saves, layer by layer; with gradient "
       "checkpointing one input per layer plus one recomputed layer (Korthikanti et al. 2022, arXiv:2205.05198). "
       "Peak = the largest of the loss, backward and optimizer-step phases, plus allocator slack, CUDA context and "
       "NCCL buffers."),
    N_("**Data to tokens.** Tokens = bytes of text ÷ bytes per token of the model's tokenizer for the language; "
       "tokens processed = tokens × epochs ÷ packing efficiency."),
    N_("**Compute and time.** FLOP per token = 6N + 3A for full fine-tuning and 4N + 6N_adapter + 3A for "
       "LoRA/QLoRA (N: active matmul parameters, A: attention FLOP at the sequence length), plus the recompute "
       "forward of gradient checkpointing (Chowdhery et al. 2022 App. B; Narayanan et al. 2021, arXiv:2104.04473). "
       "Time of one step = micro-batches × (compute ÷ (GPUs × peak × MFU) + exposed tensor/pipeline/expert/ZeRO "
       "communication) + the pipeline bubble (p − 1)/m + exposed data-parallel gradient all-reduce, with ring "
       "collectives costing 2(n − 1)/n × bytes ÷ bandwidth (Patarasuk & Yuan 2009). Total = steps × step time + "
       "loading the model + tokenizing + saving checkpoints. MFU is a named assumption per method and GPU "
       "generation."),
    N_("**Cluster and cost.** Nodes, CPU cores (per GPU plus tokenization), host RAM (per process, offloaded states, "
       "staging), shared storage (raw and tokenized data, base model, checkpoints, headroom) and the network each "
       "node needs (inter-node traffic that must hide behind compute; RDMA above a threshold) follow from the plan. "
       "Cost = nodes × on-demand price per instance-hour × hours."),
)

_METHOD_SOURCES = N_(
    "**Sources.** Model architectures: each model's Hugging Face config.json. GPU figures: vendor datasheets and "
    "whitepapers (dense, not sparse, throughput). Instance prices: the providers' on-demand price lists (provider, "
    "region and date in the appendix). Every tunable constant, with its own source, is listed in Appendix A.")


def methodology(study: Study) -> Narrative:
    """Formulas and sources of the estimates in this report."""
    parts = list(_METHOD_COMMON)
    if study.serving is not None:
        parts += _METHOD_SERVING
    if study.finetune is not None:
        parts += _METHOD_FINETUNE
    parts.append(_METHOD_SOURCES)
    return Narrative("\n\n".join(esc_formula(_(p)) for p in parts))


def esc_formula(text: str) -> str:
    """Keep formula characters (``_``, ``^``, ``*`` inside words) from becoming Markdown emphasis."""
    return text.replace("_", "\\_")


# --------------------------------------------------------------------------- audit and validation


def _audit_counts(audit: list[AuditRow] | None) -> dict[str, int]:
    counts = {"rows": 0, "cannot_hold": 0, "does_not_fit": 0, "late": 0, "more_gpus_than_needed": 0, "ok": 0}
    for a in audit or []:
        counts["rows"] += 1
        if a.weights_bytes > a.gpu_memory_total_bytes:
            counts["cannot_hold"] += 1
        elif not a.stated.fits:
            counts["does_not_fit"] += 1
        elif not a.stated.meets_deadline:
            counts["late"] += 1
        elif a.recommended.fits and a.recommended.meets_deadline and a.recommended.gpus < a.row.gpus:
            counts["more_gpus_than_needed"] += 1
        else:
            counts["ok"] += 1
    return counts


def audit_summary(audit: list[AuditRow] | None) -> str:
    """One paragraph: how many rows of the hand-made table hold up, fail to fit, run late or over-provision."""
    c = _audit_counts(audit)
    if not c["rows"]:
        return ""
    parts = []
    if c["cannot_hold"]:
        parts.append(ngettext("{n} lists too little GPU memory to hold the model at all",
                              "{n} list too little GPU memory to hold the model at all", c["cannot_hold"]))
    if c["does_not_fit"]:
        parts.append(ngettext("{n} does not fit in GPU memory with the layout as written",
                              "{n} do not fit in GPU memory with the layout as written", c["does_not_fit"]))
    if c["late"]:
        parts.append(ngettext("{n} fits but would not finish within the day",
                              "{n} fit but would not finish within the day", c["late"]))
    if c["more_gpus_than_needed"]:
        parts.append(ngettext("{n} finishes in time but lists more GPUs than needed",
                              "{n} finish in time but list more GPUs than needed", c["more_gpus_than_needed"]))
    parts.append(ngettext("{n} holds up as written", "{n} hold up as written", c["ok"]))
    keys = [k for k in ("cannot_hold", "does_not_fit", "late", "more_gpus_than_needed") if c[k]] + ["ok"]
    parts = [p.format(n=c[k]) for p, k in zip(parts, keys)]
    return _("Of the {rows} rows of the hand-made fine-tuning table, {parts}. Most rows scale the GPU count too "
             "slowly with the data: fine-tuning time grows in proportion to the tokens, so 100 × the data needs "
             "about 100 × the GPU-hours.").format(rows=c["rows"], parts=_join(parts))


def audit_section(study: Study) -> Narrative:
    """Introduction to the audit of the customer's own table."""
    summary = audit_summary(study.audit)
    intro = _("The original request came with a hand-made table of GPUs, CPU cores, memory, storage and network per "
              "model and data size, to finish each fine-tuning run within one day. Each row is re-estimated below "
              "with its own model, method, GPU type and count, and its layout as written (TP, DP, ZeRO where "
              "stated); the last columns give the smallest GPU count of the same type that meets the deadline. "
              "'BF16' rows are read as LoRA on a 16-bit base and '4-bit' rows as QLoRA, as the table's notes say; "
              "data sizes are bytes of text.")
    return Narrative(intro + (f"\n\n{esc(summary)}" if summary else ""))


def validation_summary(study: Study) -> Narrative:
    """How the estimator compares with published measurements and with other tools (empty without validation)."""
    v = study.validation
    if v is None:
        return Narrative("")
    scored = [r for r in v.rows if r.case.supported]
    better, total = 0, 0
    losses = []
    for cat in fmt._CATEGORIES:
        for m in v.methods:
            h = head_to_head(v.rows, cat, m)
            if h:
                total += 1
                if h[1] < h[2]:
                    better += 1
                else:
                    losses.append(_("{category} against {method}").format(category=esc(fmt.category_name(cat)),
                                                                          method=esc(m)))
    ours = [s for s in v.summaries if s.method == OURS and s.median_abs_error_pct is not None]
    text = _("The estimator is checked against {n} published measurements — fine-tuning peak memory, serving "
             "KV-cache capacity, weight and file sizes, parameter counts, training throughput and time — each with "
             "its configuration and source, using the default assumptions. The table gives our error per category "
             "(error = (estimate − measured) ÷ measured).").format(n=len(scored))
    if ours:
        text += " " + _("Across categories the median error of our estimates ranges from {lo} % to {hi} %.").format(
            lo=fmt.number(min(s.median_abs_error_pct for s in ours), 1),
            hi=fmt.number(max(s.median_abs_error_pct for s in ours), 1))
    if total:
        text += " " + _("On the cases both cover, our median error is lower than that of the other published "
                        "methods ({methods}) in {better} of {total} comparisons.").format(
            methods=_join([esc(m) for m in v.methods]), better=better, total=total)
        if losses:
            text += " " + _("Not in: {losses}.").format(losses=_join(losses))
    return Narrative(text)
