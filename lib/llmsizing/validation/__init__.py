"""Validation as a feature: published measurements, other methods' formulas, and our errors against both.

- ``cases``: the validation set (``cases.yaml``, ``measured/*.yaml``, ``configs/*.json``) and its loader;
- ``others_estimators`` (accelerate, DeepSpeed ZeRO, the 1.2x rule, LLaMA-Factory) and
  ``others_calculators`` (llm-analysis, Vidur, gpu_poor): the other tools' formulas as they publish them;
- ``others``: where each other method applies, and its estimate for a case;
- ``groundtruth``: tiny random-weight models measured on CPU as rows (``llmsizing validate --ground-truth``);
- ``run``: our estimator and the others on every case, rows and per-category summaries;
- ``report``: a summary DataFrame and a predicted-against-measured figure for the customer report.

``llmsizing validate`` prints the table and the summary.
"""
