"""Load-test harness for KES-compatible servers (aiokes, KES, or anything speaking its API).

``python -m bench run`` starts the target and a baseline server, drives them from separate
load-generator processes and writes a JSON file, a Markdown summary and PNG plots. See
``bench/README.md``. Not part of the ``aiokes`` wheel: it lives in the source tree only.
"""

from __future__ import annotations
