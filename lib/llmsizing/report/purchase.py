"""The purchase-ready tables: what to buy on page 2, and the instances, prices and launch commands.

Like :mod:`llmsizing.report.tables` (whose :class:`~llmsizing.report.tables.Table` they return), they
only pick and format what the study computed: per model the weights and their precision, the GPUs, the
instance and its host (vCPUs, RAM, SSD, network) and the cost per month; per model and data size the
GPUs, time and cost of a fine-tuning run; every cloud instance behind a price with its provider,
region and price date; the command that starts each recommended deployment.
"""

from __future__ import annotations

from llmsizing import catalog, instances
from llmsizing.report import fmt
from llmsizing.report.fmt import DASH, gpu_label
from llmsizing.report.i18n import NBSP, _
from llmsizing.report.study import Study
from llmsizing.report.tables import Table, _deadline, _gib, _hours, _method, _offload_note, _table, _usd

__all__ = ["HOURS_PER_MONTH", "finetune_at_a_glance", "instances_table", "launch_commands", "serving_at_a_glance"]


#: Hours in an average month (365.25 × 24 / 12), for monthly serving cost.
HOURS_PER_MONTH = 730.5


def serving_at_a_glance(study: Study) -> Table:
    """Executive summary: GPUs per model on the preferred type, and the cheapest option that fits."""
    sv = study.serving
    pref = gpu_label(sv.gpus[0])
    rows = []
    for m in sv.models:
        est = m.preferred
        if est.fits:
            lay = est.layout
            first = fmt.integer(est.gpus)
            if lay.nodes > 1:
                first += " " + _("({nodes} nodes)").format(nodes=fmt.integer(lay.nodes))
        else:
            first = _("does not fit")
        rec = m.recommended
        cl = m.cluster_by_gpu.get(m.recommended_gpu) if m.recommended_gpu else None
        rows.append({_("Model"): m.name,
                     _("Weights (GiB)"): _gib(est.weights_bytes_total),
                     _("Precision"): fmt.precision_name(est.precision),
                     _("GPUs ({gpu})").format(gpu=pref): first,
                     _("Cheapest option"): (f"{rec.gpus}{NBSP}× {gpu_label(m.recommended_gpu)}" if rec
                                           else _("none fits")),
                     _("Instance"): (f"{fmt.integer(cl.nodes)}{NBSP}× {cl.instance_name or cl.instance}"
                                     if cl and (cl.instance_name or cl.instance) else DASH),
                     _("Each node: vCPUs · RAM (GiB) · SSD (TB) · network (Gbit/s)"): _node_text(cl.node) if cl else DASH,
                     _("Cost (USD per month)"): _usd(cl.cost_usd_per_hour * HOURS_PER_MONTH)
                     if cl and cl.cost_usd_per_hour else DASH})
    notes = [_("{users} concurrent users at {tokens} tokens each; cost: on-demand cloud instances running "
               "{hours} hours a month (the instances and their price dates: the appendix).").format(
                 users=fmt.integer(sv.users), tokens=fmt.tokens(sv.context_tokens),
                 hours=fmt.integer(HOURS_PER_MONTH))]
    return _table(rows, _("Serving {users} concurrent users: what to buy").format(users=fmt.integer(sv.users)),
                  notes, key="serving-glance")


def _node_text(node: dict) -> str:
    """What one instance brings: vCPUs, host RAM (GiB), local NVMe (TB) and network (Gbit/s), units in the header."""
    if not node or not node.get("vcpus"):
        return DASH
    nvme = node.get("local_nvme_bytes")
    return " · ".join([fmt.integer(node["vcpus"]), fmt.gib(node.get("ram_bytes"), 0),
                       fmt.gb(nvme / 1000, 1) if nvme else DASH, fmt.number(node.get("network_gbps"), 0)])


def launch_commands(study: Study) -> Table | None:
    """The command that starts each recommended serving deployment (vLLM or SGLang), as sized above."""
    sv = study.serving
    if sv is None or sv.engine not in ("vllm", "sglang"):
        return None
    rows = []
    for m in sv.models:
        est = m.recommended
        if est is None:
            continue
        try:
            hf_id = catalog.load_model(m.model).hf_id or m.model
        except Exception:  # noqa: BLE001 - a config.json path has no catalog entry
            hf_id = m.model
        lay = est.layout
        if sv.engine == "vllm":
            cmd = [f"vllm serve {hf_id}", f"--tensor-parallel-size {lay.tensor_parallel}"]
            if lay.pipeline_parallel > 1:
                cmd.append(f"--pipeline-parallel-size {lay.pipeline_parallel}")
            cmd += [f"--max-model-len {sv.context_tokens}", f"--max-num-seqs {max(sv.users, 1)}"]
            if study.scenario.kv_precision == "fp8":
                cmd.append("--kv-cache-dtype fp8")
        else:
            cmd = [f"python -m sglang.launch_server --model-path {hf_id}", f"--tp {lay.tensor_parallel}"]
            if lay.pipeline_parallel > 1:
                cmd.append(f"--pp-size {lay.pipeline_parallel}")
            cmd.append(f"--context-length {sv.context_tokens}")
        rows.append({_("Model"): m.name,
                     _("GPUs"): f"{fmt.integer(est.gpus)}{NBSP}× {gpu_label(m.recommended_gpu)}",
                     _("Command"): " ".join(cmd)})
    if not rows:
        return None
    notes = [_("One command per deployment (on a multi-node layout, on the head node of a Ray cluster spanning the "
               "nodes). The context length and the number of sequences are those the deployment was sized for.")]
    return _table(rows, _("Launch commands for the recommended deployments"), notes, key="launch",
                  widths=[22, 16, 62])





def finetune_at_a_glance(study: Study) -> Table:
    """Executive summary: per model and data size, GPUs · time · cost for the first method."""
    ft = study.finetune
    method = ft.methods[0]
    rows = []
    for model in dict.fromkeys(c.model for c in ft.matrix):
        row = {_("Model"): ft.model_names.get(model, model)}
        for d in ft.data_sizes:
            c = ft.cell(model, method, d)
            if not c.ok:
                row[d] = _("not possible")
            elif not c.plan.fits:
                row[d] = _("does not fit")
            else:
                text = f"{fmt.integer(c.plan.gpus)} · {_hours(c.plan.hours)}"
                if c.plan.cost_usd is not None:
                    text += f" · {fmt.usd(c.plan.cost_usd, with_unit=True)}"
                row[d] = text + ("" if c.plan.meets_deadline else " " + _("(late)"))
        rows.append(row)
    notes = [_("GPUs ({gpu}) · wall-clock time · cost of one run for {method} within {deadline}; 'late': even the "
               "fastest plan found misses the deadline. All methods and the host of each run (CPU, RAM, storage, "
               "network): the fine-tuning section.").format(
                 gpu=gpu_label(ft.gpu), method=_method(method), deadline=_deadline(ft.deadline_hours))]
    offload = _offload_note(ft, method)
    if offload:
        notes.append(offload)
    return _table(rows, _("Fine-tuning within {deadline} ({method}): GPUs · time · cost by data size").format(
        deadline=_deadline(ft.deadline_hours), method=_method(method)), notes, key="finetune-glance")




_PROVIDERS = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Azure", "oci": "Oracle Cloud", "lambda": "Lambda",
              "coreweave": "CoreWeave"}


def instances_table(study: Study) -> Table | None:
    """Every cloud instance a plan of this report uses: provider, region, price, price date (and kind)."""
    slugs: list[str] = []
    if study.serving is not None:
        for m in study.serving.models:
            for cl in m.cluster_by_gpu.values():
                if cl.instance:
                    slugs.append(cl.instance)
    if study.finetune is not None:
        for c in list(study.finetune.matrix) + list(study.finetune.by_gpu):
            if c.ok and c.plan.fits and c.plan.cluster is not None and getattr(c.plan.cluster, "instance", None):
                slugs.append(c.plan.cluster.instance)
    rows = []
    for slug in dict.fromkeys(slugs):
        try:
            inst = instances.load_instance(slug)
        except Exception:  # noqa: BLE001 - an unknown instance is left out, not a failed report
            continue
        row = {_("Instance"): inst.name, _("Provider"): _PROVIDERS.get(inst.provider, inst.provider),
               _("GPUs"): f"{fmt.integer(inst.gpus)}{NBSP}× {gpu_label(inst.gpu)}",
               _("vCPUs"): fmt.integer(inst.vcpus), _("RAM (GiB)"): fmt.gib(inst.ram_bytes, 0),
               _("Network (Gbit/s)"): fmt.number(inst.network_gbps, 0),
               _("Region"): inst.price_region or DASH,
               _("Price (USD per hour)"): _usd(inst.price_usd_per_hour),
               _("Price date"): fmt.date(str(inst.price_date)) if inst.price_date else DASH}
        kind = getattr(inst, "price_kind", None)
        if kind:
            row[_("Pricing")] = str(kind)
        rows.append(row)
    if not rows:
        return None
    notes = [_("Prices are list prices on the date shown; confirm them with the provider before purchase.")]
    widths = [19, 8, 14, 7, 8, 9, 10, 11, 14] + ([10] if any(_("Pricing") in r for r in rows) else [])
    return _table(rows, _("Cloud instances used in this report"), notes, key="instances",
                  widths=[w * 100 / sum(widths) for w in widths])
