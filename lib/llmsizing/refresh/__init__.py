"""Keep every report current (``llmsizing refresh``) and compare a report with its earlier versions (``llmsizing diff``).

Modules: ``inputs`` (content hashes of everything a report is built from), ``plan`` (what to build
and why), ``lock`` (one refresh at a time per reports folder), ``build`` (worker processes, publish,
record), ``history`` (earlier versions, headline numbers, diffs), ``index`` (``manifest.json``,
``index.html``), ``files`` (atomic writes, time stamps). The public names are re-exported here.
"""

from llmsizing.refresh.build import DEFAULT_KEEP_HISTORY, EXIT_FAILED, RefreshReport, refresh
from llmsizing.refresh.files import read_json_file
from llmsizing.refresh.history import (HISTORY_DIR, Change, diff_report, diff_results, headline, history_entries,
                                       publish_report)
from llmsizing.refresh.index import INDEX_FILE, MANIFEST_FILE, format_value, read_manifest, render_index
from llmsizing.refresh.inputs import catalog_files
from llmsizing.refresh.lock import EXIT_BUSY, LOCK_FILE, RefreshBusy, refresh_lock
from llmsizing.refresh.plan import ScenarioPlan, plan_refresh, scenario_name

__all__ = [
    "DEFAULT_KEEP_HISTORY",
    "EXIT_BUSY",
    "EXIT_FAILED",
    "HISTORY_DIR",
    "INDEX_FILE",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "Change",
    "RefreshBusy",
    "RefreshReport",
    "ScenarioPlan",
    "catalog_files",
    "diff_report",
    "diff_results",
    "format_value",
    "headline",
    "history_entries",
    "plan_refresh",
    "publish_report",
    "read_json_file",
    "read_manifest",
    "refresh",
    "refresh_lock",
    "render_index",
    "scenario_name",
]
