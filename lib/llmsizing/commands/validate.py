"""``llmsizing validate``: our estimates and other methods' against published measurements.

Prints one table per category (measured, ours, error, each other method's error) and a summary
(per category and method: n, median |error|, max |error|, within 10 % / 20 %, bounds satisfied),
then ours against each method on the cases both cover. ``--json`` prints the same as one object.
``--ground-truth`` adds the CPU ground-truth rows (tiny random-weight models measured with torch,
transformers and peft; needs the test extra and a source checkout with ``tests/groundtruth``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from llmsizing.commands.output import print_json
from llmsizing.errors import ScenarioError, SizingError
from llmsizing.validation.cases import CATEGORIES, CATEGORY_LABELS


# categories scored only on the published serving runs (validation/serving_cases.yaml)
SERVING_ONLY = ("serving-throughput", "serving-latency")


def _category(text: str) -> str:
    key = text.strip().lower().replace("_", "-")
    if key in SERVING_ONLY:
        return key
    for slug in CATEGORIES:
        if key in (slug, CATEGORY_LABELS[slug].lower(), CATEGORY_LABELS[slug].lower().replace(" ", "-")):
            return slug
    raise ScenarioError(f"unknown category '{text}'; choose one of: {', '.join(CATEGORIES + SERVING_ONLY)}")


def ground_truth_rows(category: str | None, groundtruth):
    """CPU ground-truth rows, measured now (``groundtruth``: the ``llmsizing.validation.groundtruth`` module)."""
    if category not in (None, "cpu-ground-truth"):
        return []
    root = Path(__file__).resolve().parents[3]
    if not (root / "tests" / "groundtruth" / "harness.py").is_file():
        raise SizingError("--ground-truth needs a source checkout: tests/groundtruth/harness.py was not found")
    try:
        import peft  # noqa: F401
        import torch
        import transformers
    except ImportError as exc:
        raise SizingError(f"--ground-truth needs torch, transformers and peft (pip install -e '.[test]'): {exc}")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # torch, transformers, peft and the test harness are optional (the test extra and a source checkout)
    from tests.groundtruth.harness import measure_training_step

    versions = f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}"
    return groundtruth.groundtruth_rows(measure_training_step, versions=versions)


def _cmd_validate(args) -> int:
    # Imported here, not at the top: the validation runner brings every estimator and the planner
    # (about 20 ms), which every other command and `llmsizing --help` would pay for.
    from llmsizing.validation import groundtruth, report, residuals, run, serving_oos

    category = _category(args.category) if args.category else None
    serving_cats = [c for c in serving_oos.SERVING_CATEGORIES if category in (None, c)]
    published = serving_oos.run(None) if serving_cats else []
    published = [r for r in published if r.category in serving_cats]
    summaries = [serving_oos.summary(published, c, ins) for c in serving_cats for ins in (False, True)]
    result = None
    split = None
    if category not in SERVING_ONLY:
        extra = ground_truth_rows(category, groundtruth) if args.ground_truth else []
        result = run.run_validation(category=category, extra_rows=extra)
        split = residuals.split_summary(result.rows) if category in (None, residuals.CATEGORY) else None
    if args.json:
        d = result.to_dict() if result else {}
        if result:
            d["verdicts"] = report.verdicts(result)
        if split is not None:
            d["finetune_memory_split"] = split
        d["serving_published"] = {"rows": [r.to_dict() for r in published], "summary": summaries,
                                  "calibration_subset": dict(serving_oos.CALIBRATION)}
        print_json(d)
        return 0
    if result:
        if not args.summary_only:
            print(report.format_table(result))
            print()
        print(report.format_summary(result))
    if split is not None:
        print()
        print(residuals.format_split(split))
    if published:
        print()
        print(serving_oos.format_report(published, summaries, show_rows=not args.summary_only))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "validate", help="compare our estimates and other methods' with published measurements",
        description="Run the estimator and other published methods (accelerate, DeepSpeed, llm-analysis, Vidur, "
                    "gpu_poor, LLaMA-Factory, the 1.2x rule) on every validation case and print errors and a summary.")
    p.add_argument("--json", action="store_true", help="print one JSON object (rows, summary, head to head)")
    p.add_argument("--category", metavar="C",
                   help="only one category: finetune-memory, serving-kv-capacity, serving-throughput, "
                        "serving-latency, weights, throughput, time, params, bounds, cpu-ground-truth")
    p.add_argument("--summary-only", action="store_true", help="print only the summary")
    p.add_argument("--ground-truth", action="store_true",
                   help="also measure tiny models on CPU (torch, transformers, peft) as category cpu-ground-truth")
    p.set_defaults(handler=_cmd_validate)
