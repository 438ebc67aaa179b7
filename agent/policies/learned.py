"""The learned policy: a value model trained on the logged outcomes (agent/learned: LightGBM by
default, Vowpal Wabbit's contextual bandit on request) scores every allowed action of each customer,
and one is chosen with a little exploration, so every decision logs its true propensity.

The message is the approved template rendered with the chosen action's values (like the rules).
A model is versioned by a hash of its training data and parameters and saved under
warehouse/models/<version>/; an unchanged warehouse reuses the saved model instead of training.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from statistics import NormalDist

import duckdb
import numpy as np

from agent.learned import (
    Choice,
    LearnedModel,
    LearnerParams,
    allowed_mask,
    choose,
    default_catalog,
    explore,
    load_customer_features,
)
from agent.learned.data import logged_touches
from agent.learned.features import CustomerFeatures
from agent.learned.model import data_fingerprint, ensemble_size, model_version, models_dir, train
from agent.learned.point_in_time import CustomerTimeline
from agent.policies.registry import BuildInputs
from agent.policies.rules import RulesPolicy
from core.config import LearnedSettings
from core.contracts import (
    ActionProbability,
    CustomerContext,
    Goal,
    GuardrailSettings,
    PolicyOutcome,
    Proposal,
    stable_hash,
)
from core.errors import UserError
from core.policy import PolicyItem, Progress
from core.policy_kinds import LEARNED
from core.reference import ReferenceData
from core.templates import render_template


@dataclass(frozen=True)
class TrainedModel:
    model: LearnedModel
    features: CustomerFeatures  # the customers' features at decision time (history before `before`)
    trained: bool  # False: loaded from warehouse/models
    seconds: float


def model_for(
    con: duckdb.DuckDBPyConnection, goal: Goal, *, before: datetime | None, settings: LearnedSettings
) -> TrainedModel:
    """The model of this warehouse, goal and settings, trained on every logged touch before `before`
    (campaign history + the product's own decisions with outcomes): loaded when this exact version
    was saved before, else trained and saved."""
    t0 = time.perf_counter()
    models = models_dir()  # where the model is kept: a file there is refused before anything is read
    touches = logged_touches(con, before=before, segmented_only=True)
    # scoring reads the 360 as it is now; the dated facts behind it are read only to train (and
    # stay out of the policy a Spark run broadcasts to its executors)
    features = load_customer_features(con, before=before, timeline=False)
    members = ensemble_size(settings.gbm_members, len(features), settings.learner)
    params = LearnerParams.for_goal(goal, settings.learner, gbm_members=members)
    version = model_version(data_fingerprint(touches, features), goal, params)
    folder = models / version
    if (folder / "model.json").exists():
        model, trained = LearnedModel.load(folder), False
    else:
        facts = CustomerTimeline.load(con, features.customer_ids.tolist())
        model, trained = train(touches, replace(features, timeline=facts), goal=goal, params=params), True
        model.save(folder)
    return TrainedModel(model, features, trained, time.perf_counter() - t0)


def safe_choice(members: np.ndarray, allowed: np.ndarray, incumbent: int, confidence: float) -> int:
    """The action to send instead of `incumbent`: among the allowed actions whose gain over it has a
    one-sided lower bound above zero at `confidence` (mean minus z x standard deviation of the gain
    over the ensemble members, bootstraps of the customers), the one with the highest mean gain;
    the incumbent when there is none. One member has no spread: any positive gain counts."""
    cols = np.flatnonzero(allowed & np.isfinite(members).all(axis=0))
    gain = members[:, cols] - members[:, [incumbent]]  # (k, allowed actions)
    mean = gain.mean(axis=0)
    spread = gain.std(axis=0, ddof=1) if len(members) > 1 else np.zeros_like(mean)
    lower = mean - NormalDist().inv_cdf(confidence) * spread
    sure = np.flatnonzero(lower > 0)
    if not len(sure):
        return incumbent
    return int(cols[sure[np.argmax(mean[sure])]])


class LearnedPolicy:
    name: str = LEARNED.name
    prompt_version: str | None = None

    def __init__(
        self,
        trained: TrainedModel,
        *,
        guard: GuardrailSettings,
        ref: ReferenceData,
        settings: LearnedSettings,
    ) -> None:
        self.trained, self.guard, self.ref, self.settings = trained, guard, ref, settings
        m = trained.model
        self.model: str | None = f"{m.learner}-{m.version}"  # this model: its data and parameters
        # the recipe: the model's goal and parameters, and the switch levels that choose on top of it
        levels = {"all": settings.switch_confidence, **settings.segment_switch_confidence.get(m.goal, {})}
        recipe = stable_hash({"goal": m.goal, "params": m.params.as_dict(), "switch": levels}, length=12)
        self.identity = f"learned@{m.learner}-{recipe}"  # the recipe an eval validates
        self.catalog = default_catalog()
        self.incumbent = RulesPolicy(guard, ref)  # the action the model must clearly beat

    def ranking(self, batch: Sequence[PolicyItem]) -> tuple[np.ndarray, np.ndarray]:
        """(values (n, n_actions) with nan where not allowed, allowed mask) for a batch."""
        members, allowed = self.member_values(batch)
        return members.mean(axis=0), allowed

    def member_values(self, batch: Sequence[PolicyItem]) -> tuple[np.ndarray, np.ndarray]:
        """(each ensemble member's values (k, n, n_actions), allowed mask (n, n_actions))."""
        ids = np.array([ctx.customer_id for ctx, _ in batch], dtype=object)
        segments = np.array([ctx.segment for ctx, _ in batch], dtype=object)
        allowed = allowed_mask(
            segments, [e.allowed_channels for _, e in batch], self.guard.discount_cap, self.catalog
        )
        rows = self.trained.features.rows_of(ids)
        allowed &= (rows >= 0)[:, None]  # a customer the model has no features for gets no action
        members = self.trained.model.score_members(self.trained.features, allowed, rows=np.maximum(rows, 0))
        return members, allowed

    async def propose(
        self, batch: Sequence[PolicyItem], progress: Progress | None = None
    ) -> list[PolicyOutcome]:
        if not batch:
            return []
        members, allowed = self.member_values(batch)
        values = members.mean(axis=0)  # the members are nan together, where an action is not allowed
        ids = [ctx.customer_id for ctx, _ in batch]
        s = self.settings
        pick = choose(
            self.greedy_order(batch, values, allowed, members),
            allowed,
            ids,
            seed=s.seed,
            method=s.exploration,
            epsilon=s.epsilon,
            temperature=s.temperature,
            floor=s.floor if s.exploration == "thompson" else explore.SOFTMAX_FLOOR,
            members=members,
            share=s.thompson_share,
        )
        out = [self._outcome(ctx, i, pick, values, allowed) for i, (ctx, _) in enumerate(batch)]
        if progress:
            progress(len(out))
        return out

    def _outcome(
        self, ctx: CustomerContext, i: int, pick: Choice, values: np.ndarray, allowed: np.ndarray
    ) -> PolicyOutcome:
        """Customer `i`'s outcome: the picked action's template rendered for them, with its propensity
        and the batch's PMF over their actions; no proposal when nothing was allowed."""
        cat = self.catalog
        a = int(pick.actions[i])
        if a < 0:
            return PolicyOutcome(
                customer_id=ctx.customer_id, proposal=None, failure_reason="no_allowed_action"
            )
        template, discount = cat.template_ids[a], float(cat.discounts[a])
        subject, body = render_template(self.ref.templates[template], ctx.first_name, discount)
        explored = a != int(pick.greedy[i])
        value = float(values[i, a])
        return PolicyOutcome(
            customer_id=ctx.customer_id,
            proposal=Proposal(
                channel=cat.channels[a],  # type: ignore[arg-type]
                template_id=template,
                discount_pct=discount,
                subject=subject,
                message=body,
                rationale=(
                    f"learned ({self.model}): {'explored' if explored else 'best'} of "
                    f"{int(allowed[i].sum())} allowed actions, estimated "
                    f"{'revenue' if self.guard.goal == '90d_clv' else 'conversion'} {value:.3g}"
                ),
            ),
            model=self.model,
            propensity=float(pick.propensity[i]),
            pmf=[
                ActionProbability(
                    template_id=cat.template_ids[j],
                    discount_pct=float(cat.discounts[j]),
                    probability=float(p),
                )
                for j, p in enumerate(pick.pmf[i])
                if p > 0
            ],
        )

    def greedy_order(
        self,
        batch: Sequence[PolicyItem],
        values: np.ndarray,
        allowed: np.ndarray,
        members: np.ndarray | None = None,
    ) -> np.ndarray:
        """Values reordered so that the best one is this policy's choice: the rules' action, unless
        another allowed action's gain over it is sure (safe_choice). The order this policy chooses in,
        which an LLM drafting on top of the ranking also sees."""
        if members is None:
            members, _ = self.member_values(batch)
        out = values.copy()
        for i, (ctx, elig) in enumerate(batch):
            p = self.incumbent.propose_one(ctx, elig.allowed_channels)
            if p is None:
                continue
            a0 = int(
                self.catalog.indices(
                    np.array([p.template_id], dtype=object), np.array([p.discount_pct]), snap=True
                )[0]
            )
            if a0 < 0 or not allowed[i, a0] or not np.isfinite(values[i, a0]):
                continue
            level = self.settings.switch_level(self.guard.goal, ctx.segment)
            a = safe_choice(members[:, i, :], allowed[i], a0, level)
            best = np.nanmax(np.where(allowed[i], values[i], np.nan))
            out[i, a] = best + abs(best) * 1e-9 + 1e-12  # the safe choice is the greedy one
        return out

    def stats(self) -> dict[str, int]:
        return {"model_trained": int(self.trained.trained)}


def build(inputs: BuildInputs) -> LearnedPolicy:
    """Reads (or trains) its model from the warehouse, on the touches logged before the cut-off."""
    if inputs.con is None:
        raise UserError("MODE=learned needs the warehouse (its logged touches train the model)")
    settings = inputs.config.learned
    trained = model_for(inputs.con, inputs.guard.goal, before=inputs.history_before, settings=settings)
    return LearnedPolicy(trained, guard=inputs.guard, ref=inputs.ref, settings=settings)
