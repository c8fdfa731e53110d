"""Validation as a feature: published measurements, other methods' formulas, and our errors against both.

- ``cases``: the validation set (``cases.yaml``, ``measured/*.yaml``, ``configs/*.json``) and its loader;
- ``others``: accelerate, DeepSpeed ZeRO, the 1.2x rule, llm-analysis, Vidur, gpu_poor and LLaMA-Factory
  as published, each with where it applies;
- ``run``: our estimator and the others on every case, rows and per-category summaries;
- ``report``: a summary DataFrame and a predicted-against-measured figure for the customer report.

``llmsizing validate`` prints the table and the summary.
"""
