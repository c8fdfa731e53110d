"""Cloud GPU instances: the catalog loader and the choice of instance for a GPU count.

One YAML file per instance under ``catalog/instances/`` (and ``$LLMSIZING_CATALOG_DIR/instances``),
keys as in ``catalog.INSTANCE_KEYS``, checked strictly like the other catalogs. Units are
converted once here: ``ram_GiB`` → bytes (2^30), ``local_nvme_GB`` → bytes (10^9),
``network_Gbps`` → bytes/s (10^9 / 8). Prices are on-demand USD per instance-hour for one region
and date, as the file says.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from llmsizing import catalog
from llmsizing.errors import CatalogError
from llmsizing.units import GB, GiB

RDMA_KINDS = ("none", "efa", "infiniband", "roce", "gpudirect-tcpx", "gpudirect-tcpxo")
BITS_PER_BYTE = 8


@dataclass(frozen=True)
class InstanceSpec:
    """A cloud instance type (one node) in base units."""

    slug: str
    provider: str
    name: str
    gpu: str                      # GPU catalog slug
    gpus: int
    vcpus: int
    ram_bytes: int
    local_nvme_bytes: int
    network_bytes_per_s: float    # total per instance
    network_gbps: float
    rdma: str                     # none | efa | infiniband | roce | gpudirect-tcpx...
    gpu_interconnect: str
    price_usd_per_hour: float | None
    price_region: str
    price_date: str
    sources: tuple[str, ...] = field(default=(), compare=False)
    notes: str = ""

    @property
    def has_rdma(self) -> bool:
        """Whether the instance's network offers RDMA-class transport (GPUDirect over IB, EFA, RoCE, TCPX)."""
        return self.rdma != "none"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = list(self.sources)
        return d


def _int_field(data: dict, key: str, where: str, minimum: int = 0) -> int:
    v = data.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise CatalogError(f"{where}: key '{key}' must be an integer >= {minimum}, got {v!r}")
    return v


def _instance(path, data: dict) -> InstanceSpec:
    where = str(path)
    catalog._check_keys(data, catalog.INSTANCE_KEYS, where)
    gpu_name = data["gpu"]
    if not isinstance(gpu_name, str):
        raise CatalogError(f"{where}: key 'gpu' must be a GPU catalog slug, got {gpu_name!r}")
    try:
        gpu = catalog.load_gpu(gpu_name)
    except CatalogError as exc:
        raise CatalogError(f"{where}: key 'gpu': {exc}") from None
    rdma = str(data["rdma"]).strip().lower()
    if rdma not in RDMA_KINDS:
        raise CatalogError(f"{where}: key 'rdma' must be one of {', '.join(RDMA_KINDS)}, got {data['rdma']!r}")
    price = catalog._num(data, "price_usd_per_hour", where, allow_null=True)
    net = float(catalog._num(data, "network_Gbps", where))
    nvme = catalog._num(data, "local_nvme_GB", where, positive=False)
    date = data["price_date"]
    if isinstance(date, _dt.date):
        date = date.isoformat()
    for key in ("provider", "name", "price_region", "gpu_interconnect"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise CatalogError(f"{where}: key '{key}' must be a non-empty string")
    return InstanceSpec(
        slug=data["slug"], provider=data["provider"], name=data["name"], gpu=gpu.slug,
        gpus=_int_field(data, "gpus", where, 1), vcpus=_int_field(data, "vcpus", where, 1),
        ram_bytes=int(float(catalog._num(data, "ram_GiB", where)) * GiB),
        local_nvme_bytes=int(float(nvme) * GB),
        network_bytes_per_s=net * GB / BITS_PER_BYTE, network_gbps=net, rdma=rdma,
        gpu_interconnect=data["gpu_interconnect"], price_usd_per_hour=None if price is None else float(price),
        price_region=data["price_region"], price_date=str(date),
        sources=catalog._str_list(data, "sources", where), notes=str(data.get("notes") or ""),
    )


@lru_cache(maxsize=1)
def instance_catalog() -> dict[str, InstanceSpec]:
    """Every catalog instance by slug (read once; no I/O afterwards)."""
    return {slug: _instance(path, data) for slug, (path, data) in catalog._load_entries("instances").items()}


def list_instances() -> list[InstanceSpec]:
    """All instances, sorted by slug."""
    return [i for _, i in sorted(instance_catalog().items())]


def load_instance(name: str) -> InstanceSpec:
    """An instance by slug (``aws-p5.48xlarge``) or by provider name (``p5.48xlarge``)."""
    cat = instance_catalog()
    key = str(name).strip().lower()
    if key in cat:
        return cat[key]
    for inst in cat.values():
        if inst.name.lower() == key:
            return inst
    raise CatalogError(f"unknown instance '{name}'{catalog._suggest(key, sorted(cat))}")


@lru_cache(maxsize=256)
def instances_for_gpu(gpu_slug: str) -> tuple[InstanceSpec, ...]:
    """Instances carrying ``gpu_slug``, largest nodes first, then fastest network, then cheapest."""
    slug = catalog.load_gpu(gpu_slug).slug
    found = [i for i in instance_catalog().values() if i.gpu == slug]
    return tuple(sorted(found, key=lambda i: (-i.gpus, -i.network_gbps, _price_key(i), i.slug)))


def _price_key(inst: InstanceSpec) -> float:
    return inst.price_usd_per_hour if inst.price_usd_per_hour is not None else math.inf


def nodes_needed(gpus: int, gpus_per_node: int) -> int:
    """Nodes to hold ``gpus`` GPUs: ceil(gpus / gpus_per_node)."""
    return max(1, math.ceil(gpus / gpus_per_node))


def cheapest_instance(gpu_slug: str, gpus: int, *, min_ram_bytes: float = 0.0,
                      min_network_gbps: float = 0.0, need_rdma: bool = False) -> InstanceSpec | None:
    """Cheapest way to rent ``gpus`` GPUs of one type: minimise nodes × price among fitting instances.

    A fitting instance has at least ``min_ram_bytes`` of RAM and ``min_network_gbps`` per node
    (and RDMA when asked). Multi-node answers need an instance with RDMA when ``need_rdma``.
    Instances without a price sort last; None when no instance carries the GPU or none fits.
    """
    best: tuple[float, int, str] | None = None
    choice = None
    for inst in instances_for_gpu(gpu_slug):
        if inst.ram_bytes < min_ram_bytes or inst.network_gbps < min_network_gbps:
            continue
        n = nodes_needed(gpus, inst.gpus)
        if need_rdma and n > 1 and not inst.has_rdma:
            continue
        cost = n * _price_key(inst)
        key = (cost, n, inst.slug)
        if best is None or key < best:
            best, choice = key, inst
    return choice
