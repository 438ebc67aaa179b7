"""The learned value model: customer x action values trained on logged touches, and exploration.

Public interface (what a Policy(MODE=learned) calls):

    from agent.learned import (ActionCatalog, LearnedModel, LearnerParams, allowed_mask, choose,
                               load_customer_features, logged_touches, models_dir, train)

    touches = logged_touches(con)                       # pa.Table, TOUCH_SCHEMA: history + own decisions
    cf = load_customer_features(con)                    # segmented customers, history before `before`
    model = train(touches, cf, goal="90d_clv")          # or LearnedModel.load(models_dir() / version)
    allowed = allowed_mask(segments, allowed_channels, discount_cap)       # (n, 26) bool
    values = model.score(cf, allowed, rows=cf.rows_of(customer_ids))       # (n, 26), nan = not allowed
    pick = choose(values, allowed, customer_ids, seed=run_seed, epsilon=0.05)
    # pick.actions (n,) catalog index (-1: none), pick.propensity (n,), pick.pmf, pick.greedy
    # default_catalog().template_ids[a], .channels[a], .discounts[a]; model.version goes in the log

Modules: data (TOUCH_SCHEMA and the readers), actions (catalog, allowed mask), features (customer
360 + own response history before a cut-off), vw_learner (Vowpal Wabbit cb_explore_adf), model
(LearnedModel: train, score, save/load, version), explore (epsilon-greedy / softmax with
propensities). Policies never read the truth; only bench/ and evals do.
"""

from agent.learned.actions import ActionCatalog, allowed_mask, default_catalog
from agent.learned.data import TOUCH_SCHEMA, logged_touches
from agent.learned.explore import Choice, choose
from agent.learned.features import (
    CustomerFeatures,
    build_customer_features,
    customer_table,
    load_customer_features,
)
from agent.learned.model import DEFAULT_LEARNER, LearnedModel, LearnerParams, models_dir, train

__all__ = [
    "DEFAULT_LEARNER",
    "TOUCH_SCHEMA",
    "ActionCatalog",
    "Choice",
    "CustomerFeatures",
    "LearnedModel",
    "LearnerParams",
    "allowed_mask",
    "build_customer_features",
    "choose",
    "customer_table",
    "default_catalog",
    "load_customer_features",
    "logged_touches",
    "models_dir",
    "train",
]
