"""On-premises servers: the catalog loader (``catalog/servers/*.yaml``, keys as in ``catalog.SERVER_KEYS``).

A server is a node one buys (8-GPU HGX/DGX-class or PCIe 4/8-GPU boxes): CPUs, cores, RAM, NVMe, NICs,
power and a list price where the vendor publishes one (most do not: ``list_price: null`` with a note).
Units are converted once here: ``ram_GiB`` → bytes (2^30), ``nvme_TB`` → bytes (10^12), NIC ``Gbps`` stays
in gigabits per second (10^9 bits), ``power_kW_max`` → watts. A plan says "buy N × server X" from these.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from functools import lru_cache

from llmsizing import catalog
from llmsizing.choices import CONFIDENCE_LEVELS, CURRENCIES, RDMA_KINDS
from llmsizing.errors import CatalogError
from llmsizing.units import GiB

TB = 10**12
WATTS_PER_KW = 1000.0


@dataclass(frozen=True)
class Nic:
    """``count`` network ports of ``gbps`` each, for ``purpose`` (compute fabric, storage, ...)."""

    count: int
    gbps: float
    rdma: str
    purpose: str


@dataclass(frozen=True)
class ServerSpec:
    """An on-premises server type in base units (None: not published)."""

    slug: str
    name: str
    vendor: str
    gpu: str
    gpus: int
    gpu_interconnect: str
    cpu_model: str
    cpu_sockets: int | None
    cpu_cores: int | None
    ram_bytes: int | None
    nvme_bytes: int | None
    nics: tuple[Nic, ...]
    power_w_max: float | None
    list_price: dict | None           # {currency, value, date, source}
    list_price_note: str
    confidence: str
    sources: tuple[str, ...] = field(default=(), compare=False)
    notes: str = ""

    @property
    def network_gbps(self) -> float:
        """Total NIC bandwidth of the server in Gbit/s (every port of every NIC)."""
        return sum(n.count * n.gbps for n in self.nics)

    @property
    def compute_network_gbps(self) -> float:
        """NIC bandwidth of the RDMA ports (the compute fabric); all ports when none is RDMA."""
        rdma = sum(n.count * n.gbps for n in self.nics if n.rdma != "none")
        return rdma or self.network_gbps

    @property
    def rdma(self) -> str:
        kinds = [n.rdma for n in self.nics if n.rdma != "none"]
        return kinds[0] if kinds else "none"

    def to_dict(self) -> dict:
        return {"slug": self.slug, "name": self.name, "vendor": self.vendor, "gpu": self.gpu, "gpus": self.gpus,
                "cpu_model": self.cpu_model, "cpu_cores": self.cpu_cores, "ram_bytes": self.ram_bytes,
                "nvme_bytes": self.nvme_bytes, "network_gbps": self.network_gbps, "rdma": self.rdma,
                "power_w_max": self.power_w_max, "list_price": self.list_price,
                "list_price_note": self.list_price_note, "confidence": self.confidence}


def _opt_int(data: dict, key: str, where: str) -> int | None:
    v = data.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise CatalogError(f"{where}: key '{key}' must be a positive integer or null, got {v!r}")
    return v


def _nic(d: object, where: str) -> Nic:
    catalog._check_keys(d, catalog.SERVER_NIC_KEYS, where)
    count = d["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise CatalogError(f"{where}: key 'count' must be a positive integer, got {count!r}")
    if d["rdma"] not in RDMA_KINDS:
        raise CatalogError(f"{where}: key 'rdma' must be one of {', '.join(RDMA_KINDS)}, got {d['rdma']!r}")
    return Nic(count=count, gbps=float(catalog._num(d, "Gbps", where)), rdma=d["rdma"], purpose=str(d["purpose"]))


def _list_price(data: dict, where: str) -> dict | None:
    lp = data["list_price"]
    if lp is None:
        return None
    catalog._check_keys(lp, catalog.SERVER_LIST_PRICE_KEYS, f"{where}: list_price")
    if lp["currency"] not in CURRENCIES:
        raise CatalogError(f"{where}: list_price 'currency' must be one of {', '.join(CURRENCIES)}")
    date = lp["date"].isoformat() if isinstance(lp["date"], _dt.date) else str(lp["date"])
    return {"currency": lp["currency"], "value": float(catalog._num(lp, "value", f"{where}: list_price")),
            "date": date, "source": str(lp["source"])}


def _server(path, data: dict) -> ServerSpec:
    where = str(path)
    catalog._check_keys(data, catalog.SERVER_KEYS, where)
    try:
        gpu = catalog.load_gpu(data["gpu"])
    except CatalogError as exc:
        raise CatalogError(f"{where}: key 'gpu': {exc}") from None
    gpus = data["gpus"]
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise CatalogError(f"{where}: key 'gpus' must be a positive integer, got {gpus!r}")
    if data["confidence"] not in CONFIDENCE_LEVELS:
        raise CatalogError(f"{where}: key 'confidence' must be one of {', '.join(CONFIDENCE_LEVELS)}")
    nics = data["nics"]
    if not isinstance(nics, list) or not nics:
        raise CatalogError(f"{where}: key 'nics' must be a non-empty list")
    ram = catalog._num(data, "ram_GiB", where, allow_null=True)
    nvme = catalog._num(data, "nvme_TB", where, allow_null=True)
    power = catalog._num(data, "power_kW_max", where, allow_null=True)
    return ServerSpec(
        slug=data["slug"], name=str(data["name"]), vendor=str(data["vendor"]), gpu=gpu.slug, gpus=gpus,
        gpu_interconnect=str(data["gpu_interconnect"]), cpu_model=str(data["cpu_model"]),
        cpu_sockets=_opt_int(data, "cpu_sockets", where), cpu_cores=_opt_int(data, "cpu_cores_total", where),
        ram_bytes=None if ram is None else int(ram * GiB), nvme_bytes=None if nvme is None else int(nvme * TB),
        nics=tuple(_nic(n, f"{where}: nics[{i}]") for i, n in enumerate(nics)),
        power_w_max=None if power is None else power * WATTS_PER_KW, list_price=_list_price(data, where),
        list_price_note=str(data.get("list_price_note") or ""), confidence=data["confidence"],
        sources=catalog._str_list(data, "sources", where), notes=str(data.get("notes") or ""))


@lru_cache(maxsize=1)
def server_catalog() -> dict[str, ServerSpec]:
    """Every catalog server by slug (read once)."""
    return {slug: _server(path, data) for slug, (path, data) in catalog._load_entries("servers").items()}


def list_servers() -> list[ServerSpec]:
    """All servers, sorted by slug."""
    return [s for _, s in sorted(server_catalog().items())]


@lru_cache(maxsize=256)
def servers_for_gpu(gpu_slug: str) -> tuple[ServerSpec, ...]:
    """Servers carrying ``gpu_slug``: most GPUs first, then the fastest compute network."""
    slug = catalog.load_gpu(gpu_slug).slug
    found = [s for s in server_catalog().values() if s.gpu == slug]
    return tuple(sorted(found, key=lambda s: (-s.gpus, -s.compute_network_gbps, s.slug)))
