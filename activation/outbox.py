"""The dry-run outbox: `outbox/<run_id>/` written atomically.

Files are first written into a hidden temp directory beside the target, then renamed into place in one
`rename`, so a reader (or a crash) never sees half an outbox. Re-writing a run id replaces the old
directory (moved aside, then deleted). `<destination>.jsonl` holds one line per request item, exactly
the dict `build_payload` returns, with its batch number (items of one batch go out as one request),
record key, idempotency key and payload hash. Other files (the caller's manifest, the guardrail impact
report) ride in the same rename through `extra_files`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from activation.destinations.base import OutboundItem


def item_line(item: OutboundItem, batch: int) -> dict[str, Any]:
    return {
        "batch": batch,
        "decision_id": item.decision_id,
        "record_key": item.record_key,
        "idempotency_key": item.idempotency_key,
        "payload_hash": item.payload_hash,
        "payload": item.payload,
    }


def jsonl(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, sort_keys=True, default=str) + "\n" for line in lines)


def write_outbox(root: Path, run_id: str, files: Mapping[str, bytes | str]) -> Path:
    """Write `files` (name -> content) as `root/run_id/` in one atomic rename; returns the directory."""
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise ValueError(f"unsafe run id for an outbox directory: {run_id!r}")
    root.mkdir(parents=True, exist_ok=True)
    final = root / run_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.tmp-", dir=root))
    try:
        for name, content in files.items():
            if Path(name).name != name:
                raise ValueError(f"outbox file names are flat: {name!r}")
            data = content.encode() if isinstance(content, str) else content
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        tmp.chmod(0o755)
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{run_id}.old-", dir=root))
            os.rename(final, old / run_id)
        os.rename(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
