"""Assumptions shared by serving and training."""

from llmsizing.assumptions import Assumption

ASSUMPTIONS = (
    Assumption(
        "cuda_context_bytes", 536870912, "bytes",
        "CUDA context + cuBLAS/cuDNN workspaces on Ampere/Hopper, typically 300-600 MiB per process "
        "(PyTorch 'CUDA semantics' notes; vLLM profiling logs report 0.5-1 GiB non-torch memory)",
        "Device memory a process holds outside PyTorch's allocator (driver context, kernels, library workspaces).",
        "runtime",
    ),
    Assumption(
        "node_gpus_default", 8, "GPUs",
        "HGX/DGX baseboards and the largest cloud GPU instances hold 8 GPUs (AWS p4d/p5, GCP a3, Azure ND)",
        "GPUs per node when a GPU's catalog entry does not say otherwise.",
        "cluster",
    ),
)
