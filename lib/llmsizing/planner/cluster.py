"""Cluster bill of materials: nodes, CPU cores, host RAM, storage, network, instance and cost.

Small pure functions; every constant is a named assumption (``assumptions/planner.py``).
The fine-tuning planner (``planner.plans``) calls them with a chosen layout; ``serving_cluster``
does the same for a serving result (GPUs of one type → instances, $/hour, $/million output tokens).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from llmsizing import catalog, instances
from llmsizing.assumptions import Assumptions
from llmsizing.errors import ScenarioError
from llmsizing.instances import InstanceSpec
from llmsizing.specs import GpuSpec
from llmsizing.units import GB, SECONDS_PER_HOUR

BITS_PER_BYTE = 8
TOKENS_PER_MILLION = 1e6


@dataclass(frozen=True)
class NodeType:
    """The node a plan runs on: a catalog instance, or a generic node when the catalog has none."""

    gpus_per_node: int
    vcpus: int | None
    ram_bytes: int | None
    local_nvme_bytes: int | None
    network_gbps: float
    rdma: str
    price_usd_per_hour: float | None
    instance: InstanceSpec | None
    network_published: bool = True   # False: the provider does not publish it; a generic node's is assumed

    @property
    def slug(self) -> str | None:
        return self.instance.slug if self.instance else None

    @property
    def network_bytes_per_s(self) -> float:
        return self.network_gbps * GB / BITS_PER_BYTE

    def to_dict(self) -> dict:
        return {"instance": self.slug, "instance_name": self.instance.name if self.instance else None,
                "provider": self.instance.provider if self.instance else None,
                "gpus_per_node": self.gpus_per_node, "vcpus": self.vcpus, "ram_bytes": self.ram_bytes,
                "local_nvme_bytes": self.local_nvme_bytes, "network_gbps": self.network_gbps,
                "network_published": self.network_published, "rdma": self.rdma,
                "price_usd_per_hour": self.price_usd_per_hour,
                "price_region": self.instance.price_region if self.instance else None,
                "price_date": self.instance.price_date if self.instance else None,
                "price_kind": self.instance.price_kind if self.instance else None,
                "currency": self.instance.currency if self.instance else None,
                "price": self.instance.price if self.instance else None,
                "confidence": self.instance.confidence if self.instance else None}


SERVER_FORMS = ("SXM", "OAM", "superchip")


def generic_node(gpu: GpuSpec, assumptions: Assumptions) -> NodeType:
    """A node of ``gpu.node_gpus_max`` GPUs and no price, for a GPU without a catalog instance.

    Server modules (SXM, OAM, superchips) come in training nodes with one RDMA NIC per GPU
    (``default_network_gbps_per_gpu_server``); PCIe cards in servers with ``default_node_network_gbps``.
    """
    if any(f.lower() in (gpu.form or "").lower() for f in SERVER_FORMS):
        net = float(assumptions["default_network_gbps_per_gpu_server"]) * gpu.node_gpus_max
        rdma = "infiniband"
    else:
        net, rdma = float(assumptions["default_node_network_gbps"]), "none"
    return NodeType(gpus_per_node=gpu.node_gpus_max, vcpus=None, ram_bytes=None, local_nvme_bytes=None,
                    network_gbps=net, rdma=rdma, price_usd_per_hour=None, instance=None)


def node_from_instance(inst: InstanceSpec, assumed_network_gbps: float) -> NodeType:
    """The node type of a catalog instance; where its provider publishes no network, the network of a
    generic node of its GPU (``generic_node``) is assumed and the node says so."""
    published = inst.network_gbps is not None
    return NodeType(gpus_per_node=inst.gpus, vcpus=inst.vcpus, ram_bytes=inst.ram_bytes,
                    local_nvme_bytes=inst.local_nvme_bytes,
                    network_gbps=inst.network_gbps if published else assumed_network_gbps, rdma=inst.rdma,
                    price_usd_per_hour=inst.price_usd_per_hour, instance=inst, network_published=published)


def _pool(gpu: GpuSpec) -> tuple[InstanceSpec, ...]:
    """On-demand instances carrying ``gpu``: the priced ones, or (none priced) the unpriced ones."""
    found = instances.instances_for_gpu(gpu.slug)
    priced = tuple(i for i in found if i.priced)
    return priced or found


def training_instance(gpu: GpuSpec) -> InstanceSpec | None:
    """The instance repeated for multi-node runs: the most GPUs per node; among those RDMA first, then the
    cheapest (unpriced last), then the fastest network. Instances whose network the provider does not
    publish are never repeated: a multi-node plan's communication time depends on it."""
    pool = tuple(i for i in _pool(gpu) if i.network_gbps is not None)
    if not pool:
        return None
    most = max(i.gpus for i in pool)
    return min((i for i in pool if i.gpus == most),
               key=lambda i: (not i.has_rdma, instances._price_key(i), -(i.network_gbps or 0.0), i.slug))


def node_for_gpus(gpu: GpuSpec, gpus: int, assumptions: Assumptions) -> NodeType:
    """The node type for ``gpus`` GPUs of one type (on-demand prices; instances without a price only when
    no instance carrying the GPU has one).

    One node when an instance holds them all (the cheapest such instance, then the smallest); otherwise
    ``training_instance`` repeated. Without a catalog instance: a generic node (``generic_node``).
    """
    pool = _pool(gpu)
    generic = generic_node(gpu, assumptions)
    if not pool:
        return generic
    single = [i for i in pool if i.gpus >= gpus]
    if single:
        return node_from_instance(min(single, key=lambda i: (instances._price_key(i), i.gpus, i.slug)),
                                  generic.network_gbps)
    multi = training_instance(gpu)
    return node_from_instance(multi, generic.network_gbps) if multi is not None else generic


def billed_gpu_counts(gpu: GpuSpec, counts: list[int], assumptions: Assumptions) -> list[int]:
    """The GPU counts a plan may use when it pays for whole instances: each count becomes the GPU count of
    the node that would be rented for it (2 GPUs on an 8-GPU instance → 8 GPUs), so a plan uses every
    GPU it pays for. Generic nodes (no catalog instance) keep the counts: cards are bought one by one."""
    if not _pool(gpu):
        return list(counts)
    out = set()
    for n in counts:
        node = node_for_gpus(gpu, n, assumptions)
        out.add(max(n, node.gpus_per_node) if n <= node.gpus_per_node else n)
    return sorted(out)


def nodes_for(gpus: int, node: NodeType) -> int:
    """Nodes needed: ceil(gpus / gpus_per_node)."""
    return instances.nodes_needed(gpus, node.gpus_per_node)


# ----------------------------------------------------------------------------- requirements


def cpu_cores_required(gpus: int, nodes: int, raw_bytes: float, deadline_s: float, assumptions: Assumptions,
                       cpu_adam_cores: float = 0.0) -> dict[str, float]:
    """vCPUs the run needs, by purpose.

    training = gpus × cpu_cores_per_gpu + nodes × cpu_cores_base_per_node + CPU-Adam cores (offload);
    tokenization = raw_bytes / (tokenization_bytes_per_s_per_core × tokenization_time_fraction × deadline);
    total = max(training, tokenization) — tokenization runs before training on the same CPUs.
    """
    a = assumptions
    training = gpus * float(a["cpu_cores_per_gpu"]) + nodes * float(a["cpu_cores_base_per_node"]) + cpu_adam_cores
    tok = raw_bytes / (float(a["tokenization_bytes_per_s_per_core"]) * float(a["tokenization_time_fraction"])
                       * deadline_s)
    return {"training": training, "tokenization": tok, "total": float(math.ceil(max(training, tok)))}


def host_ram_required_per_node_bytes(gpus_on_node: int, gpu_memory_bytes: float, offloaded_bytes_per_gpu: float,
                                     load_staging_bytes: float, assumptions: Assumptions) -> dict[str, float]:
    """Host RAM one node needs, by part.

    processes = host_ram_base_per_node + gpus_on_node × host_ram_per_gpu;
    offload = gpus_on_node × offloaded (optimizer states, parameters, pinned buffers) per GPU;
    staging = the node's share of the checkpoint while loading/sharding it (before training: it does not
    add to the offloaded states, which are built from it);
    floor = host_ram_per_gpu_memory × gpus_on_node × GPU memory;
    total = max(floor, processes + max(offload, staging)).
    """
    a = assumptions
    processes = float(a["host_ram_base_per_node_bytes"]) + gpus_on_node * float(a["host_ram_per_gpu_bytes"])
    offload = gpus_on_node * offloaded_bytes_per_gpu
    floor = float(a["host_ram_per_gpu_memory"]) * gpus_on_node * gpu_memory_bytes
    need = processes + max(offload, load_staging_bytes)
    return {"processes": processes, "offload": offload, "staging": load_staging_bytes, "floor": floor,
            "total": max(floor, need)}


def storage_required_bytes(raw_bytes: float, tokenized_bytes: float, base_model_bytes: float,
                           checkpoint_bytes: float, final_model_bytes: float,
                           assumptions: Assumptions) -> dict[str, float]:
    """Storage for the run, by part (shared across nodes).

    total = (raw + tokenized + base model + checkpoints_kept × checkpoint + final export)
            × (1 + storage_headroom_fraction).
    """
    a = assumptions
    kept = float(a["checkpoints_kept"])
    parts = {"raw_dataset": raw_bytes, "tokenized_dataset": tokenized_bytes, "base_model": base_model_bytes,
             "checkpoints": kept * checkpoint_bytes, "final_model": final_model_bytes}
    subtotal = sum(parts.values())
    parts["headroom"] = subtotal * float(a["storage_headroom_fraction"])
    parts["total"] = subtotal + parts["headroom"]
    return parts


#: Port speeds of data-centre NICs in Gbit/s: Ethernet 1/10/25/40/50/100/200/400/800GbE (IEEE 802.3,
#: https://standards.ieee.org/ieee/802.3/) and InfiniBand EDR 100, HDR 200, NDR 400, XDR 800
#: (NVIDIA ConnectX-5..8 product briefs, https://www.nvidia.com/en-us/networking/infiniband-adapters/).
NIC_SPEEDS_GBPS = (1.0, 10.0, 25.0, 40.0, 50.0, 100.0, 200.0, 400.0, 800.0)
#: Above one port, nodes add 400 Gbit/s ports (one ConnectX-7 per GPU in HGX H100/H200 nodes: DGX H100
#: user guide, https://docs.nvidia.com/dgx/dgxh100-user-guide/introduction-to-dgxh100.html).
NIC_PORT_GBPS = 400.0


def nic_gbps_at_least(need_gbps: float) -> float:
    """The smallest real NIC bandwidth per node that carries ``need_gbps``: the next port speed in
    ``NIC_SPEEDS_GBPS``, beyond the fastest port ceil(need / 400) × 400 Gbit/s (several 400G ports)."""
    if need_gbps <= 0:
        return 0.0
    for s in NIC_SPEEDS_GBPS:
        if need_gbps <= s:
            return s
    return math.ceil(need_gbps / NIC_PORT_GBPS) * NIC_PORT_GBPS


def provisioned_network_gbps(need_gbps: float, node: NodeType) -> float:
    """Network per node to provision for a run that needs ``need_gbps`` per node.

    A catalog instance or server comes with its NICs: that is the answer (a need above it is exposed in
    the time, and the plan says so). A generic node: the need rounded up to a NIC speed
    (``nic_gbps_at_least``), at least the generic node's network, at most one 400 Gbit/s port per GPU
    (beyond that a node cannot hide the traffic; it is exposed in the time).
    """
    if node.instance is not None:
        return node.network_gbps
    ceiling = max(node.network_gbps, NIC_PORT_GBPS * node.gpus_per_node)
    return max(node.network_gbps, min(nic_gbps_at_least(need_gbps), ceiling))


def gbps(bytes_per_s: float) -> float:
    """Bytes per second → gigabits per second (10^9 bits)."""
    return bytes_per_s * BITS_PER_BYTE / GB


def rdma_needed(network_gbps_per_node: float, nodes: int, assumptions: Assumptions) -> bool:
    """Multi-node runs whose per-node traffic exceeds ``rdma_required_above_gbps`` need RDMA."""
    return nodes > 1 and network_gbps_per_node > float(assumptions["rdma_required_above_gbps"])


def cost_usd(nodes: int, hours: float | None, node: NodeType) -> float | None:
    """Cost of the run: nodes × price per node-hour × hours, at the node's price kind (on-demand by default;
    None without a price or a time)."""
    if node.price_usd_per_hour is None or hours is None or not math.isfinite(hours):
        return None
    return nodes * node.price_usd_per_hour * hours


# ----------------------------------------------------------------------------- serving


@dataclass(frozen=True)
class ServingCluster:
    """Instances for a serving deployment and what it costs."""

    gpu: str
    gpus: int
    nodes: int
    gpus_per_node: int
    instance: str | None
    instance_name: str | None
    price_usd_per_hour: float | None      # per node
    cost_usd_per_hour: float | None       # all nodes
    output_tokens_per_s: float | None     # all users together
    cost_usd_per_million_output_tokens: float | None
    node: dict

    def to_dict(self) -> dict:
        return asdict(self)


def _get(result: Any, key: str, default: Any = None) -> Any:
    if isinstance(result, Mapping):
        return result.get(key, default)
    if hasattr(result, "to_dict"):
        return result.to_dict().get(key, default)
    return getattr(result, key, default)


def serving_cluster(result: Any, assumptions: Assumptions | Mapping | None = None) -> ServingCluster:
    """Instances, $/hour and $/million output tokens for a serving result.

    ``result`` is ``serve --json``'s dict (or an object with the same names): ``gpu``, ``gpus``,
    ``decode_tokens_per_s_per_user``, ``users`` (``max_concurrent_users`` when ``users`` is absent).
    cost per hour = nodes × price; tokens per hour = decode_tokens_per_s_per_user × users × 3600;
    $/M tokens = cost per hour / (tokens per hour / 10^6).
    """
    a = Assumptions.of(assumptions)
    gpu_name = _get(result, "gpu")
    if not gpu_name:
        raise ScenarioError("serving result has no 'gpu' key")
    gpu = catalog.load_gpu(gpu_name) if isinstance(gpu_name, str) else gpu_name
    n = _get(result, "gpus")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ScenarioError(f"serving result key 'gpus' must be a positive integer, got {n!r}")
    node = node_for_gpus(gpu, n, a)
    nodes = nodes_for(n, node)
    per_hour = None if node.price_usd_per_hour is None else nodes * node.price_usd_per_hour
    rate = _get(result, "decode_tokens_per_s_per_user")
    users = _get(result, "users") or _get(result, "max_concurrent_users")
    tokens_per_s = rate * users if isinstance(rate, (int, float)) and isinstance(users, (int, float)) else None
    per_m = None
    if per_hour is not None and tokens_per_s and tokens_per_s > 0:
        per_m = per_hour / (tokens_per_s * SECONDS_PER_HOUR / TOKENS_PER_MILLION)
    return ServingCluster(gpu=gpu.slug, gpus=n, nodes=nodes, gpus_per_node=node.gpus_per_node,
                          instance=node.slug, instance_name=node.instance.name if node.instance else None,
                          price_usd_per_hour=node.price_usd_per_hour, cost_usd_per_hour=per_hour,
                          output_tokens_per_s=tokens_per_s, cost_usd_per_million_output_tokens=per_m,
                          node=node.to_dict())
