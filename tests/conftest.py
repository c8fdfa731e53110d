import os

os.environ.setdefault("MPLBACKEND", "Agg")
# Hugging Face ids outside the catalog resolve from the local cache only: no test reaches the Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# --------------------------------------------------------------------------- reports (issue #6)
# One build of the default report set per test session, shared by test_report_pdf.py and
# test_golden.py (a build takes a minute: the fine-tuning matrix plus the PDF).

import pathlib as _pathlib

import pytest as _pytest

ROOT = _pathlib.Path(__file__).resolve().parents[1]
DEFAULT_PARAMS = ROOT / "params" / "deepseek-r1-family.yaml"


def weasyprint_usable() -> bool:
    try:
        import weasyprint  # noqa: F401
    except OSError:  # Pango/HarfBuzz libraries missing: run `make sysdeps`
        return False
    return True


@_pytest.fixture(scope="session")
def build_report(tmp_path_factory):
    """``build_report(params_path, language)``: that scenario's report in that language, built once per session."""
    from llmsizing.report.runner import run_scenario

    built: dict = {}

    def build(params, language: str = "en"):
        key = (str(params), language)
        if key not in built:
            out = tmp_path_factory.mktemp(f"reports-{language}")
            formats = ("html", "pdf") if weasyprint_usable() else ("html",)
            with _pytest.MonkeyPatch.context() as mp:
                mp.delenv("MPLBACKEND", raising=False)
                built[key] = run_scenario(params, out, formats, report_language=language)
        return built[key]

    return build


@_pytest.fixture(scope="session")
def default_report(build_report):
    """``llmsizing run params/deepseek-r1-family.yaml`` into a temporary reports folder."""
    return build_report(DEFAULT_PARAMS, "en")
