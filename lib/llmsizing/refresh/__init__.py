"""Keep every report current (``llmsizing refresh``) and compare a report with its earlier versions (``llmsizing diff``).

Modules: ``inputs`` (content hashes of everything a report is built from), ``plan`` (what to build
and why), ``lock`` (one refresh at a time per reports folder), ``build`` (worker processes, publish,
record), ``history`` (earlier versions, headline numbers, diffs), ``index`` (``manifest.json``,
``index.html``), ``files`` (atomic writes, time stamps). Import from the modules themselves.
"""
