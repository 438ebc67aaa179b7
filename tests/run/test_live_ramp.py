"""`make activate DRY_RUN=0 MODE=learned` goes through the ramp without FORCE: with an eval that passes
the offline screen, the live run sends the learned policy on a randomized share and the rules on the
rest, over real HTTP to the local webhook server, logs the mixture's propensities and both
distributions, and the gate reads the ramp's outcomes at the next live run."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from activation.gate import PromotionRefused
from activation.run import run_activation
from activation.settings import ActivateSettings
from core.config import load_settings


def _eval_passing_the_screen(db: Path, identity: str) -> None:
    report = {
        "eval_id": "e-ramp",
        "candidate": {"identity": identity, "name": "learned"},
        "baseline": {"identity": "rules", "name": "rules"},
        "comparisons": [{"metric": "revenue_90d", "value": 0.8, "low": -1.5, "high": 3.1}],
        "customer_values": [{"policy": "rules", "metric": "revenue_90d", "segment": "all", "dr_value": 24.0}],
    }
    con = duckdb.connect(str(db))
    con.execute(
        "insert into ops.eval_runs values ('e-ramp', now(), ?, 'rules', 400, ?)",
        [identity, json.dumps(report)],
    )
    con.close()


def test_a_live_learned_run_ramps_without_force(
    warehouse_copy: Path, start_servers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    servers = start_servers()
    monkeypatch.setenv("NBA_DESTINATIONS", "webhook")
    monkeypatch.setenv("NBA_MODELS_DIR", str(tmp_path / "models"))
    # without an eval the gate refuses, naming the eval to run
    with pytest.raises(PromotionRefused, match="make eval MODE=learned BASELINE=rules"):
        run_activation(load_settings(ActivateSettings, mode="learned", dry_run=False))
    identity = run_activation(load_settings(ActivateSettings, mode="learned", dry_run=True)).policy_identity
    assert identity and identity.startswith("learned@")
    _eval_passing_the_screen(warehouse_copy, identity)

    live = run_activation(load_settings(ActivateSettings, mode="learned", dry_run=False))
    assert live.promotion_gate and "ramping" in live.promotion_gate and "ramp" in live.promotion_gate
    assert live.policy_identity == f"ramp:{identity}"
    sends = live.counts["send"]
    assert sends > 0 and live.destinations["webhook"]["delivered"] == sends
    assert servers.webhook.stats()["unique_records"] == sends
    con = duckdb.connect(str(warehouse_copy), read_only=True)
    arms = dict(con.execute("select arm, count(*) from ops.ramp_assignments group by arm").fetchall())
    assert arms.get("candidate", 0) > 50 and arms.get("incumbent", 0) > 50
    ramp_state = con.execute("select state, candidate, incumbent from ops.ramps").fetchall()
    assert ramp_state == [("ramp", identity, "rules")]
    # every sent decision logged the mixture's exact propensity: the sent action's share of it
    rows = con.execute(
        "select d.template_id, d.discount_pct, d.propensity, d.action_pmf from ops.decision_log d "
        "where not d.dry_run and d.status = 'send'"
    ).fetchall()
    con.close()
    for template, discount, propensity, pmf in rows:
        probs = {(t, float(x)): p for t, x, p in json.loads(pmf)}
        assert abs(sum(probs.values()) - 1) < 1e-6
        assert propensity == pytest.approx(probs[(template, float(discount))])
