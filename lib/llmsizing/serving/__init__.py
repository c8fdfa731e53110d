"""Serving sizing: ``serve`` (memory per GPU, layout, KV capacity, speed for N users) and its parts.

Modules, each one concern: ``plan`` (the request resolved into numbers, candidate layouts),
``sharding`` (what each GPU holds), ``engines`` (memory as each engine allocates it),
``roofline`` (speed), ``estimate`` (``serve``, capacity, the result).
"""

from llmsizing.serving.estimate import (MemoryPerGpu, ServingEstimate, estimate_plan, serve,
                                        users_memory_comparison)
from llmsizing.serving.plan import Plan, make_plan
from llmsizing.serving.sharding import Layout

__all__ = ["Layout", "MemoryPerGpu", "Plan", "ServingEstimate", "estimate_plan", "make_plan", "serve",
           "users_memory_comparison"]
