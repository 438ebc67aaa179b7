"""LearnedModel: the value of each allowed action of each customer, trained on logged touches.

    touches = data.logged_touches(con)                          # TOUCH_SCHEMA (history + own decisions)
    cf = features.build_customer_features(features.customer_table(con), touches)
    model = train(touches, cf, goal="90d_clv")                   # learner="gbm" (default), "dr" or "vw"
    values = model.score(cf, allowed)                            # (n, n_actions), nan where not allowed
    path = model.save(models_dir() / model.version); same = LearnedModel.load(path)

Three learners behind one interface (`learner=`):
- "vw": Vowpal Wabbit `--cb_explore_adf --cb_type dr` (see vw_learner), trained on the logged touches
  whose action is in the customer's segment's bank (the actions a decision chooses among);
- "gbm": a LightGBM reward model on every logged touch: `engagement` predicts conversion (binary),
  `90d_clv` revenue_90d (tweedie: a point mass at 0 and a skewed positive part); the value is the
  calibrated mean of `gbm_members` boosters, each fit on its own bootstrap of the customers. One
  booster moves with its seed as much as with a day of new rows; the members' mean is steadier, and
  their spread is the model's uncertainty (the policy's safe switch and exploration read it).
- "dr": the same ensemble of boosters (bootstraps of the customers), fit not to the logged outcome
  of the one action taken but to cross-fitted doubly-robust scores of every action of the row's
  segment's bank (dr_learner): a value model learned for the decision among those actions.
Goals: `90d_clv` values an action by its expected revenue_90d (net of the discount, as logged);
`engagement` by its probability of conversion within 14 days.

`version` is a hash of the training data (touches and customer features) and every parameter, so
the same data and parameters give the same version, and anything else a different one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from agent.learned import dr_learner, keyed, vw_learner
from agent.learned.actions import ActionCatalog, default_catalog
from agent.learned.features import (
    CUSTOMER_FEATURES,
    LOO,
    PAIR_FEATURES,
    REV_SCALE,
    CustomerFeatures,
    FeatureParams,
    Priors,
    RowHistory,
    customer_matrix,
    fit_priors,
    pair_matrix,
    touch_actions,
)
from core.contracts import Goal
from core.errors import ConfigError
from warehouse import paths

Learner = Literal["vw", "gbm", "dr"]
LEARNERS: tuple[str, ...] = ("vw", "gbm", "dr")
GBM_BACKED: tuple[str, ...] = ("gbm", "dr")  # learners whose model is a GBMEnsemble
# LearnerParams' own default (benchmarks and tests that name no learner). The product's learner is
# the setting NBA_LEARNED__LEARNER (core.config.LearnedSettings), "dr" by default.
DEFAULT_LEARNER: Learner = "gbm"
MODEL_FILE = "model.json"
FORMAT_VERSION = 1
# Boosters per GBM model. Five score five times the trees, so `auto` (the product's default,
# NBA_LEARNED__GBM_MEMBERS) uses five up to AUTO_MEMBERS_MAX_CUSTOMERS customers with features and
# one above, where five would pass the scoring-time target (bench/README.md has the figures).
GBM_MEMBERS = 1  # LearnerParams' own default (benchmarks and tests that name no ensemble)
AUTO_MEMBERS = 5
AUTO_MEMBERS_MAX_CUSTOMERS = 20_000
VW_CHUNK = 50_000  # examples per chunk of VW text (bounds the text held in memory)
GBM_FEATURES = CUSTOMER_FEATURES + PAIR_FEATURES + ("action_template", "action_channel")


def ensemble_size(members: int | Literal["auto"], customers: int, learner: Learner = "gbm") -> int:
    """Boosters to average: `members` as given, or for `auto` AUTO_MEMBERS up to
    AUTO_MEMBERS_MAX_CUSTOMERS customers with features and one above (see GBM_MEMBERS); one for VW,
    which has no boosters."""
    if learner not in GBM_BACKED:
        return 1
    if members != "auto":
        return int(members)
    return AUTO_MEMBERS if customers <= AUTO_MEMBERS_MAX_CUSTOMERS else 1


def models_dir() -> Path:
    """Where models are saved: NBA_MODELS_DIR, default warehouse/models (warehouse.paths); a file
    there is refused in one line, before any training."""
    folder = paths.models_dir()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            "NBA_MODELS_DIR", f"{folder} is a file, not a folder: point it at a new or empty folder"
        )
    return folder


@dataclass(frozen=True)
class LearnerParams:
    """Everything that shapes a model besides the data (part of its version)."""

    learner: Learner = DEFAULT_LEARNER
    max_rows: int = 1_000_000  # training touches sampled (by `seed`) when there are more
    seed: int = 0
    features: FeatureParams = field(default_factory=FeatureParams)
    vw_args: str = vw_learner.DEFAULT_ARGS
    vw_passes: int = 1
    gbm_rounds: int = 200
    gbm_learning_rate: float = 0.1
    gbm_leaves: int = 15
    gbm_min_leaf: int = 200
    # boosters averaged (seeds seed .. seed + members - 1); above max_rows // members training rows
    # each member trains on its own seeded sample of that size, so the boosting work stays that of
    # one booster on max_rows
    gbm_members: int = GBM_MEMBERS
    # members fit on bootstraps of the customers (more than one member): their spread is the
    # model's uncertainty, and out-of-bag rows calibrate the mean to the logged outcomes
    gbm_bootstrap: bool = True
    # "free": trees may split an action's effect on any customer feature; "shared": a tree models
    # either the customer's own value (customer features) or the action's effect, which then depends
    # on the customer only through the segment, the preferred channel and the customer's own history
    # with the action's channel, template and discount (LightGBM interaction constraints)
    gbm_action_effects: Literal["free", "shared"] = "free"
    threads: int = 2
    # learner "dr" only (dr_learner): cross-fitting folds, the propensity floor of its DR scores,
    # and the (row, action) pairs its members train on (sampled beyond, by `seed`)
    dr_folds: int = dr_learner.DR_FOLDS
    dr_propensity_floor: float = dr_learner.PROPENSITY_FLOOR
    dr_max_pairs: int = dr_learner.DR_MAX_PAIRS
    dr_min_leaf_share: float = dr_learner.DR_MIN_LEAF_SHARE  # second stage: min_data_in_leaf / member's pairs

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["features"] = self.features.as_dict()
        if self.learner != "dr":  # not part of other learners' models: their versions stay as they were
            for k in [k for k in d if k.startswith("dr_")]:
                del d[k]
        if self.gbm_action_effects == "free":  # the default: versions stay as they were
            del d["gbm_action_effects"]
        return d

    @classmethod
    def for_goal(cls, goal: Goal, learner: Learner = DEFAULT_LEARNER, **kw: Any) -> LearnerParams:
        """Defaults per goal (measured): VW learns revenue better with a smaller learning rate."""
        if learner == "vw" and goal == "90d_clv" and "vw_args" not in kw:
            kw["vw_args"] = vw_learner.DEFAULT_ARGS.replace("-l 0.5", "-l 0.1")
        if learner == "vw" and "max_rows" not in kw:
            kw["max_rows"] = 500_000  # ~10 text lines per example: bounds VW's training time
        return cls(learner=learner, **kw)


def _digest(h: Any, arr: np.ndarray | pa.ChunkedArray) -> None:
    """Feed a column into the hash canonically (independent of Arrow's chunking and slicing):
    strings as dictionary codes + the dictionary, everything else as its numpy values."""
    if isinstance(arr, np.ndarray):
        h.update(np.ascontiguousarray(arr).tobytes())
        return
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_dictionary(arr.type):
        enc = (
            pc.dictionary_encode(arr).combine_chunks()
            if not pa.types.is_dictionary(arr.type)
            else arr.combine_chunks()
        )
        h.update(enc.indices.to_numpy(zero_copy_only=False).astype(np.int32).tobytes())
        h.update("\x00".join(map(str, enc.dictionary.to_pylist())).encode())
        return
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.int64())
    h.update(np.ascontiguousarray(arr.to_numpy(zero_copy_only=False)).tobytes())


def data_fingerprint(touches: pa.Table, cf: CustomerFeatures) -> str:
    """sha256 of the training data: every column of the touches and every customer feature."""
    h = hashlib.sha256()
    for name in touches.column_names:
        h.update(name.encode())
        _digest(h, touches.column(name))
    h.update("\x00".join(map(str, cf.customer_ids.tolist())).encode())
    for arr in (cf.base, cf.n, cf.conv, cf.rev):
        _digest(h, arr)
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class TrainingRows:
    rows: np.ndarray  # customer row in cf
    actions: np.ndarray
    propensity: np.ndarray
    conv: np.ndarray
    rev: np.ndarray
    # what the row is (customer, touch time, action), hashed: the training's samples are keyed on it
    key: np.ndarray
    # its customer's key (agent.learned.keyed.string_keys of the id): bootstrap weights and folds
    customer_key: np.ndarray
    # each row's 360 block and history as of its touch (FeatureParams); None: cf's, with `loo`
    base: np.ndarray | None = None
    history: RowHistory | None = None

    def take(self, idx: np.ndarray) -> TrainingRows:
        return TrainingRows(
            self.rows[idx],
            self.actions[idx],
            self.propensity[idx],
            self.conv[idx],
            self.rev[idx],
            self.key[idx],
            self.customer_key[idx],
            base=None if self.base is None else self.base[idx],
            history=None if self.history is None else self.history.take(idx),
        )

    @property
    def loo(self) -> LOO:
        return LOO(self.actions, self.conv, self.rev)


def training_rows(
    touches: pa.Table, cf: CustomerFeatures, cat: ActionCatalog, params: LearnerParams
) -> TrainingRows:
    """The logged touches of cf's customers, before cf's cutoff (its history's cutoff), sampled to
    `max_rows` with `seed` when there are more (keyed by the touch, agent.learned.keyed); featurised
    as of each touch (after sampling, so the as-of work scales with the rows trained on, not with the
    history)."""
    from agent.learned.features import _before, row_history, training_base

    touches = _before(touches, cf.cutoff)
    rows = cf.rows_of(touches.column("customer_id"))
    acts = touch_actions(touches, cat)
    keep = np.flatnonzero((rows >= 0) & (acts >= 0))
    customer_keys = keyed.string_keys(cf.customer_ids)
    at_all = touches.column("touched_at").to_numpy(zero_copy_only=False)[keep].astype("datetime64[us]")
    key = keyed.combine(customer_keys[rows[keep]], at_all.astype(np.int64), acts[keep])
    if len(keep) > params.max_rows:
        kept = keyed.smallest(keyed.combine(key, params.seed), params.max_rows)
        keep, key = keep[kept], key[kept]
    col = lambda n: touches.column(n).to_numpy(zero_copy_only=False)[keep]  # noqa: E731
    at = col("touched_at").astype("datetime64[us]")
    fp = params.features
    return TrainingRows(
        rows[keep],
        acts[keep],
        col("propensity").astype(np.float64),
        col("converted_14d").astype(np.float64),
        col("revenue_90d").astype(np.float64),
        key,
        customer_keys[rows[keep]],
        base=training_base(cf, rows[keep], at) if fp.base_as_of_touch else None,
        history=row_history(cf, touches, rows[keep], at, cat) if fp.history_as_of_touch else None,
    )


class GBMEnsemble:
    """LightGBM boosters, each fit on its own bootstrap of the customers (member k saved as model.lgb /
    model-k.lgb). Their mean is the value; their spread is the model's own uncertainty, which the
    policy uses to switch away from the incumbent only where the gain is sure and to explore where
    it is not. `scale` calibrates the mean to the logged outcomes (out-of-bag rows of each member)."""

    def __init__(self, boosters: list[Any], scale: float = 1.0) -> None:
        if not boosters:
            raise ValueError("a GBM ensemble needs at least one booster")
        self.boosters = boosters
        self.scale = scale

    @staticmethod
    def file_name(k: int) -> str:
        return "model.lgb" if k == 0 else f"model-{k}.lgb"

    def predict_members(self, x: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """(members, rows) calibrated predictions."""
        return self.scale * np.stack(
            [np.asarray(b.predict(x, num_threads=num_threads), dtype=np.float64) for b in self.boosters]
        )

    def predict(self, x: np.ndarray, num_threads: int = 0) -> np.ndarray:
        return self.predict_members(x, num_threads).mean(axis=0)  # type: ignore[no-any-return]

    def save(self, directory: Path) -> None:
        for k, b in enumerate(self.boosters):
            b.save_model(str(directory / self.file_name(k)))

    @classmethod
    def load(cls, directory: Path, members: int, scale: float = 1.0) -> GBMEnsemble:
        from core.openmp import lightgbm as _lightgbm

        lightgbm = _lightgbm()

        boosters = [lightgbm.Booster(model_file=str(directory / cls.file_name(k))) for k in range(members)]
        return cls(boosters, scale)


def _reward(goal: Goal, t: TrainingRows) -> np.ndarray:
    return t.rev if goal == "90d_clv" else t.conv


class LearnedModel:
    """A trained value model: `score` gives the estimated value of every allowed action."""

    def __init__(
        self,
        *,
        goal: Goal,
        params: LearnerParams,
        priors: Priors,
        version: str,
        data_hash: str,
        n_train: int,
        backend: Any,
        catalog: ActionCatalog | None = None,
    ) -> None:
        self.goal: Goal = goal
        self.params = params
        self.priors = priors
        self.version = version
        self.data_hash = data_hash
        self.n_train = n_train
        self.catalog = catalog or default_catalog()
        self._backend = backend  # GBMEnsemble | (model bytes, VWScorer)

    @property
    def learner(self) -> Learner:
        return self.params.learner

    # --- scoring ---------------------------------------------------------------------------------
    def score_pairs(self, cf: CustomerFeatures, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Estimated value of each (customer row of cf, catalog action) pair: expected revenue_90d
        (90d_clv) or conversion probability (engagement)."""
        rows = np.asarray(rows, dtype=np.int64)
        actions = np.asarray(actions, dtype=np.int64)
        if not len(rows):
            return np.zeros(0)
        fp = self.params.features
        if self.learner in GBM_BACKED:
            x = self._pair_x(cf, rows, actions)
            return np.asarray(self._backend.predict(x, num_threads=self.params.threads), dtype=np.float64)
        pair = pair_matrix(cf, self.priors, fp, rows, actions, catalog=self.catalog)
        uniq, inv = np.unique(rows, return_inverse=True)
        shared = customer_matrix(cf, self.priors, fp, uniq, catalog=self.catalog)
        cost = self._backend[1].cost(shared, inv.ravel(), actions, pair)
        return -cost * (REV_SCALE if self.goal == "90d_clv" else 1.0)  # type: ignore[no-any-return]

    def score_members(
        self, cf: CustomerFeatures, allowed: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """(members, n, n_actions) each ensemble member's values, nan where not allowed (VW: one
        member). Their mean is `score`; their spread says how sure the model is of each value."""
        allowed, rows = self._check(cf, allowed, rows)
        r, a = np.nonzero(allowed)
        if self.learner not in GBM_BACKED:
            out = np.full((1, *allowed.shape), np.nan)
            out[0, r, a] = self.score_pairs(cf, rows[r], a)
            return out
        vals = self._backend.predict_members(self._pair_x(cf, rows[r], a), num_threads=self.params.threads)
        out = np.full((len(vals), *allowed.shape), np.nan)
        out[:, r, a] = vals
        return out

    def _check(
        self, cf: CustomerFeatures, allowed: np.ndarray, rows: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        allowed = np.asarray(allowed, dtype=bool)
        rows = np.arange(len(cf)) if rows is None else np.asarray(rows, dtype=np.int64)
        if allowed.shape != (len(rows), len(self.catalog)):
            raise ValueError(f"allowed must be ({len(rows)}, {len(self.catalog)}), got {allowed.shape}")
        if len(rows) and rows.min() < 0:
            raise ValueError(
                "rows must index customers of the features (cf.rows_of gives -1 for unknown ones)"
            )
        return allowed, rows

    def _pair_x(self, cf: CustomerFeatures, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
        fp = self.params.features
        pair = pair_matrix(cf, self.priors, fp, rows, actions, catalog=self.catalog)
        uniq, inv = np.unique(rows, return_inverse=True)
        cust = customer_matrix(cf, self.priors, fp, uniq, catalog=self.catalog)[inv.ravel()]
        return np.hstack([cust, pair, self._action_cols(actions)])

    def score(self, cf: CustomerFeatures, allowed: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(n, n_actions) estimated values; nan where an action is not allowed.

        `allowed` is (n, n_actions) booleans (actions.allowed_mask); `rows` the cf row of each of
        its rows (default: cf's rows in order, n == len(cf))."""
        allowed, rows = self._check(cf, allowed, rows)
        out = np.full(allowed.shape, np.nan)
        r, a = np.nonzero(allowed)
        out[r, a] = self.score_pairs(cf, rows[r], a)
        return out

    def _action_cols(self, actions: np.ndarray) -> np.ndarray:
        cat = self.catalog
        return np.column_stack([cat.template_code[actions], cat.channel_code[actions]]).astype(np.float32)

    # --- persistence -----------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "version": self.version,
            "goal": self.goal,
            "learner": self.learner,
            "params": self.params.as_dict(),
            "priors": self.priors.as_dict(),
            "data_hash": self.data_hash,
            "n_train": self.n_train,
            "scale": self._backend.scale if self.learner in GBM_BACKED else 1.0,
            "actions": [self.catalog.label(i) for i in range(len(self.catalog))],
            "customer_features": list(CUSTOMER_FEATURES),
            "pair_features": list(PAIR_FEATURES),
        }

    def save(self, directory: Path) -> Path:
        """Write model.json and the learner's file into `directory`, atomically (all or nothing)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            if self.learner in GBM_BACKED:
                self._backend.save(tmp)
            else:
                (tmp / "model.vw").write_bytes(self._backend[0])
            (tmp / MODEL_FILE).write_text(json.dumps(self.meta(), indent=1, sort_keys=True) + "\n")
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory: Path) -> LearnedModel:
        directory = Path(directory)
        path = directory / MODEL_FILE
        if not path.exists():
            raise FileNotFoundError(
                f"no learned model at {directory} (missing {MODEL_FILE}): train one first"
            )
        meta = json.loads(path.read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: model format {meta.get('format')}, this code reads {FORMAT_VERSION}")
        cat = default_catalog()
        if meta["actions"] != [cat.label(i) for i in range(len(cat))]:
            raise ValueError(f"{path}: trained on another action bank; retrain the model")
        p = dict(meta["params"])
        p.setdefault("gbm_members", 1)  # saved before boosters were averaged: one booster
        p.setdefault("gbm_bootstrap", False)
        p["features"] = FeatureParams(**p["features"])
        params = LearnerParams(**p)
        backend = _load_backend(directory, params, cat, float(meta.get("scale", 1.0)))
        return cls(
            goal=meta["goal"],
            params=params,
            priors=Priors.from_dict(meta["priors"]),
            version=meta["version"],
            data_hash=meta["data_hash"],
            n_train=meta["n_train"],
            backend=backend,
            catalog=cat,
        )


def _load_backend(directory: Path, params: LearnerParams, cat: ActionCatalog, scale: float = 1.0) -> Any:
    if params.learner in GBM_BACKED:
        return GBMEnsemble.load(directory, params.gbm_members, scale)
    blob = (directory / "model.vw").read_bytes()
    scorer = vw_learner.VWScorer.from_model(
        directory / "model.vw", params.vw_args, CUSTOMER_FEATURES, PAIR_FEATURES, cat
    )
    return (blob, scorer)


def model_version(data_hash: str, goal: Goal, params: LearnerParams) -> str:
    raw = json.dumps(
        {"data": data_hash, "goal": goal, "params": params.as_dict(), "format": FORMAT_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def train(
    touches: pa.Table,
    cf: CustomerFeatures,
    *,
    goal: Goal,
    params: LearnerParams | None = None,
    catalog: ActionCatalog | None = None,
) -> LearnedModel:
    """Train on `touches` (TOUCH_SCHEMA) of cf's customers before cf's cutoff. Each row's features
    are as of its touch (FeatureParams: the customer's history before the touch, the 360 block as of
    its day)."""
    if goal not in ("90d_clv", "engagement"):
        raise ValueError(f"unknown goal {goal!r}; valid: 90d_clv, engagement")
    params = params or LearnerParams.for_goal(goal)
    if params.learner not in LEARNERS:
        raise ValueError(f"unknown learner {params.learner!r}; valid: {', '.join(LEARNERS)}")
    if params.gbm_members < 1:
        raise ValueError(f"gbm_members must be at least 1, got {params.gbm_members}")
    if params.learner == "dr" and (
        params.dr_folds < 2
        or not 0 < params.dr_propensity_floor <= 1
        or not 0 < params.dr_min_leaf_share < 0.5
    ):
        raise ValueError(
            f"learner dr needs dr_folds >= 2, dr_propensity_floor in (0, 1] and dr_min_leaf_share in "
            f"(0, 0.5), got {params.dr_folds}, {params.dr_propensity_floor}, {params.dr_min_leaf_share}"
        )
    cat = catalog or default_catalog()
    priors = fit_priors(cf.n, cf.conv, cf.rev)
    t = training_rows(touches, cf, cat, params)
    if not len(t.rows):
        raise ValueError("no logged touches of these customers to train on: build the warehouse first")
    data_hash = data_fingerprint(touches, cf)
    version = model_version(data_hash, goal, params)
    backend: GBMEnsemble | tuple[bytes, vw_learner.VWScorer]
    if params.learner == "gbm":
        backend = _train_gbm(goal, t, cf, priors, params, cat)
    elif params.learner == "dr":
        backend = _train_dr(goal, t, cf, priors, params, cat)
    else:
        backend = _train_vw(goal, t, cf, priors, params, cat)
    return LearnedModel(
        goal=goal,
        params=params,
        priors=priors,
        version=version,
        data_hash=data_hash,
        n_train=len(t.rows),
        backend=backend,
        catalog=cat,
    )


def _train_x(
    cf: CustomerFeatures,
    priors: Priors,
    fp: FeatureParams,
    t: TrainingRows,
    cat: ActionCatalog,
    actions: np.ndarray | None = None,
) -> np.ndarray:
    """GBM_FEATURES of each training row (as of its touch) with `actions` (default: its logged one)."""
    acts = t.actions if actions is None else actions
    return np.hstack(
        [
            customer_matrix(cf, priors, fp, t.rows, t.loo, catalog=cat, base=t.base, history=t.history),
            pair_matrix(cf, priors, fp, t.rows, acts, t.loo, catalog=cat, base=t.base, history=t.history),
            np.column_stack([cat.template_code[acts], cat.channel_code[acts]]).astype(np.float32),
        ]
    )


def _train_gbm(
    goal: Goal,
    t: TrainingRows,
    cf: CustomerFeatures,
    priors: Priors,
    params: LearnerParams,
    cat: ActionCatalog,
) -> GBMEnsemble:
    x = _train_x(cf, priors, params.features, t, cat)
    return _fit_members(x, _reward(goal, t), t.key, t.customer_key, goal, params, params.max_rows)


def _fit_members(
    x: np.ndarray,
    y: np.ndarray,
    row_keys: np.ndarray,
    customer_keys: np.ndarray,
    goal: Goal,
    params: LearnerParams,
    budget: int,
    objective: str | None = None,
    calibrate: bool = True,
    overrides: dict[str, Any] | None = None,
) -> GBMEnsemble:
    """`params.gbm_members` boosters on (x, y), member k on its Poisson bootstrap of the customers
    (`customer_keys`: each row's customer's key) and, above `budget` rows, on its own sample of
    budget // members rows (by `row_keys`); `calibrate` scales their mean to y's on the rows each
    member left out. Both draws are keyed (agent.learned.keyed): a retrain on more rows keeps them."""
    from core.openmp import lightgbm as _lightgbm

    lightgbm = _lightgbm()

    n_feat = x.shape[1]
    per_member = max(budget // params.gbm_members, 1)
    bootstrap = params.gbm_bootstrap and params.gbm_members > 1
    boosters = []
    oob_sum, oob_n = np.zeros(len(y)), np.zeros(len(y))
    for k in range(params.gbm_members):
        rows = np.arange(len(y))
        if len(y) > per_member and params.gbm_members > 1:
            rows = keyed.smallest(keyed.combine(row_keys, params.seed, k), per_member)
        # member k's bootstrap of the customers: each customer's rows weighted by one Poisson(1) draw
        weight = keyed.poisson1(keyed.combine(customer_keys[rows], params.seed, k, 1)) if bootstrap else None
        config = _gbm_config(goal, params, params.seed + k)
        if objective is not None:
            config["objective"] = objective
        config.update(overrides or {})
        if params.gbm_action_effects == "shared":
            config["interaction_constraints"] = action_effect_groups()
        data = lightgbm.Dataset(
            x[rows],
            y[rows],
            weight=weight,
            feature_name=list(GBM_FEATURES),
            categorical_feature=[n_feat - 2, n_feat - 1],
            free_raw_data=True,
        )
        booster = lightgbm.train(config, data, num_boost_round=params.gbm_rounds)
        boosters.append(booster)
        if calibrate:
            out = rows[weight == 0] if weight is not None else rows
            oob_sum[out] += booster.predict(x[out], num_threads=params.threads)
            oob_n[out] += 1
    if not calibrate:
        return GBMEnsemble(boosters, 1.0)
    seen = oob_n > 0
    pred = oob_sum[seen] / oob_n[seen]
    scale = float(y[seen].sum() / pred.sum()) if seen.any() and pred.sum() > 0 else 1.0
    return GBMEnsemble(boosters, scale)


DR_CHUNK = 100_000  # pairs featurised at a time (bounds the per-row history copies)


def _train_dr(
    goal: Goal,
    t: TrainingRows,
    cf: CustomerFeatures,
    priors: Priors,
    params: LearnerParams,
    cat: ActionCatalog,
) -> GBMEnsemble:
    """The DR-learner (dr_learner): cross-fitted reward models (one booster each, as "gbm") give
    mu for every (row, bank action) pair of the held-out customers; the members are fit with l2 to
    the pairs' DR scores, so their mean (uncalibrated: l2 keeps the target's mean) is the value."""
    fp = params.features
    row_keys, customer_keys = t.key, t.customer_key
    pr, pa_ = dr_learner.bank_pairs(cf.segments[t.rows], cat, params.dr_max_pairs, params.seed, row_keys)
    if not len(pr):
        raise ValueError("no training row of a segmented customer: nothing for the DR learner to score")
    x = np.empty((len(pr), len(GBM_FEATURES)), dtype=np.float32)
    for lo in range(0, len(pr), DR_CHUNK):
        hi = min(lo + DR_CHUNK, len(pr))
        x[lo:hi] = _train_x(cf, priors, fp, t.take(pr[lo:hi]), cat, pa_[lo:hi])
    fold = dr_learner.customer_folds(customer_keys, params.dr_folds, params.seed)
    mu = np.full(len(pr), np.nan)
    one = replace(params, gbm_members=1)
    for k in range(params.dr_folds):
        held = fold[pr] == k
        train_rows = np.flatnonzero(fold != k)
        if not held.any():
            continue
        if not len(train_rows):
            raise ValueError("a cross-fitting fold holds every customer: too few customers for dr_folds")
        reward_model = _train_gbm(goal, t.take(train_rows), cf, priors, one, cat)
        mu[held] = reward_model.predict(x[held], num_threads=params.threads)
    gamma = dr_learner.dr_pseudo_outcomes(
        mu, pa_ == t.actions[pr], _reward(goal, t)[pr], t.propensity[pr], params.dr_propensity_floor
    )
    member_pairs = (
        len(pr) if params.gbm_members == 1 else min(len(pr), params.dr_max_pairs // params.gbm_members)
    )
    min_leaf = max(int(params.dr_min_leaf_share * member_pairs), 1)
    return _fit_members(
        x,
        gamma,
        keyed.combine(row_keys[pr], pa_),
        customer_keys[pr],
        goal,
        params,
        params.dr_max_pairs,
        objective="regression",
        calibrate=False,
        overrides={"min_data_in_leaf": min_leaf},
    )


def action_effect_groups() -> list[list[int]]:
    """The two groups of GBM_FEATURES a tree may combine (gbm_action_effects="shared"): the
    customer's features; and the action's own (template, channel, discount, the customer's history
    with them) with the segment and the preferred channel."""
    customer = [i for i, f in enumerate(GBM_FEATURES) if f in CUSTOMER_FEATURES]
    moderators = [i for i, f in enumerate(GBM_FEATURES) if f.startswith(("seg_", "pref_"))]
    action = [i for i, f in enumerate(GBM_FEATURES) if f not in CUSTOMER_FEATURES]
    return [customer, sorted(set(action) | set(moderators))]


def _gbm_config(goal: Goal, params: LearnerParams, seed: int) -> dict[str, Any]:
    return {
        "objective": "tweedie" if goal == "90d_clv" else "binary",
        "learning_rate": params.gbm_learning_rate,
        "num_leaves": params.gbm_leaves,
        "min_data_in_leaf": params.gbm_min_leaf,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": params.threads,
        "verbose": -1,
    }


def _train_vw(
    goal: Goal,
    t: TrainingRows,
    cf: CustomerFeatures,
    priors: Priors,
    params: LearnerParams,
    cat: ActionCatalog,
) -> tuple[bytes, vw_learner.VWScorer]:
    """One example per touch whose action is in the customer's segment's bank; candidates: that bank."""
    bank = cat.segment_mask(cf.segments[t.rows])
    t = t.take(np.flatnonzero(bank[np.arange(len(t.rows)), t.actions]))
    bank = cat.segment_mask(cf.segments[t.rows])
    fp = params.features
    cost = -_reward(goal, t) / (REV_SCALE if goal == "90d_clv" else 1.0)

    def chunks() -> Iterator[pa.Array]:
        for lo in range(0, len(t.rows), VW_CHUNK):
            c = t.take(np.arange(lo, min(lo + VW_CHUNK, len(t.rows))))
            ex, acts = np.nonzero(bank[lo : lo + VW_CHUNK])
            # VW reads no NaN: an unknown as-of value (an uncovered web window) enters as 0
            shared = np.nan_to_num(
                customer_matrix(cf, priors, fp, c.rows, c.loo, catalog=cat, base=c.base, history=c.history)
            )
            per = c.take(ex)
            pair = pair_matrix(
                cf, priors, fp, per.rows, acts, per.loo, catalog=cat, base=per.base, history=per.history
            )
            labels = vw_learner.label_prefixes(acts == c.actions[ex], cost[lo:][ex], c.propensity[ex])
            yield vw_learner.example_lines(
                shared, CUSTOMER_FEATURES, ex, acts, pair, PAIR_FEATURES, cat, labels
            )

    with tempfile.TemporaryDirectory(prefix="nba-vw-model-") as tmp:
        path = Path(tmp) / "model.vw"
        vw_learner.train_vw(
            chunks(), params.vw_args + f" --random_seed {params.seed}", path, params.vw_passes
        )
        scorer = vw_learner.VWScorer.from_model(path, params.vw_args, CUSTOMER_FEATURES, PAIR_FEATURES, cat)
        return path.read_bytes(), scorer
