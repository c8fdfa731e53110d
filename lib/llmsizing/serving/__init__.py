"""Serving sizing: ``serve`` (memory per GPU, layout, KV capacity, speed for N users) and its parts.

Modules, each one concern: ``plan`` (the request resolved into numbers, candidate layouts),
``sharding`` (what each GPU holds), ``engines`` (memory as each engine allocates it),
``roofline`` (speed), ``estimate`` (``serve``, capacity, the result).
"""
