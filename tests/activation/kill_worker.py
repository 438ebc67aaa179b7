"""Subprocess for the kill-and-rerun test: delivers `n` decisions live, settings from NBA_* env.

usage: python kill_worker.py <duckdb file> <n> <run_id>
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery_factory import make_decisions  # noqa: E402

from activation.delivery import deliver  # noqa: E402
from activation.destinations import destinations_for  # noqa: E402
from activation.settings import ActivateSettings  # noqa: E402
from core.config import load_settings  # noqa: E402


def main() -> None:
    db, n, run_id = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    con = duckdb.connect(db)
    settings = load_settings(ActivateSettings, dry_run=False)
    summary = deliver(
        make_decisions(n), con=con, run_id=run_id, dry_run=False, outbox_dir=Path(db).parent / "outbox",
        destinations=destinations_for(settings), settings=settings.delivery,
    )  # fmt: skip
    con.close()
    print(summary.model_dump_json())


if __name__ == "__main__":
    main()
