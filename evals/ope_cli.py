"""`nba-eval ope`: off-policy estimates (IPS, SNIPS, DR with intervals) from any logged table.

  nba-eval ope --table logs.parquet --target-action-col candidate_action --feature-col x
  python -m evals.ope_cli --table logs.csv --target-prob-prefix pi_

The table format is docs/ope.md's (evals.ope_table). A bad table or flag is one line naming the
column or flag and the fix, and exit 2.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Annotated, Literal

import typer

from core.cli import new_app, run, version_option
from core.errors import UserError
from evals.ope import Estimate
from evals.ope_table import (
    ESTIMATORS,
    EstimatorName,
    Target,
    TargetAction,
    TargetLoggedProb,
    TargetLong,
    TargetProbs,
    estimate_from_table,
)

app = new_app(
    "nba-eval ope",
    "Off-policy estimates of a candidate policy from any table of logged decisions (docs/ope.md).",
)


def _target(
    action_col: str | None,
    prob_prefix: str | None,
    logged_prob_col: str | None,
    long: str | None,
    row_col: str | None,
) -> Target:
    given = {
        "--target-action-col": action_col,
        "--target-prob-prefix": prob_prefix,
        "--target-logged-prob-col": logged_prob_col,
        "--target-long": long,
    }
    chosen = [flag for flag, value in given.items() if value is not None]
    if len(chosen) != 1:
        raise UserError(
            f"give exactly one way to read the candidate policy ({', '.join(given)}); got "
            + (", ".join(chosen) if chosen else "none")
        )
    if action_col is not None:
        return TargetAction(action_col)
    if prob_prefix is not None:
        return TargetProbs(prefix=prob_prefix)
    if logged_prob_col is not None:
        return TargetLoggedProb(logged_prob_col)
    if row_col is None:
        raise UserError("--target-long needs --row-col: the row id column the long table refers to")
    return TargetLong(str(long), row_col=row_col)


Table = Annotated[
    str, typer.Option("--table", metavar="FILE", help="The logged decisions: a .parquet or .csv file.")
]
ActionCol = Annotated[str, typer.Option(metavar="COL", help="Column of the logged action's label.")]
RewardCol = Annotated[str, typer.Option(metavar="COL", help="Column of the observed reward.")]
PropensityCol = Annotated[
    str,
    typer.Option(metavar="COL", help="Column of the logging policy's probability of the logged action."),
]
FeatureCol = Annotated[
    list[str] | None,
    typer.Option(metavar="COL", help="A numeric context feature for DR (repeat the flag)."),
]
GroupCol = Annotated[
    str | None,
    typer.Option(metavar="COL", help="Column DR's reward model is cross-fitted by (e.g. a customer id)."),
]
TargetActionCol = Annotated[
    str | None,
    typer.Option(metavar="COL", help="Candidate: column of its action on each row (empty: none)."),
]
TargetProbPrefix = Annotated[
    str | None,
    typer.Option(
        metavar="PREFIX", help="Candidate: its probability of each action in columns <prefix><label>."
    ),
]
TargetLoggedProbCol = Annotated[
    str | None,
    typer.Option(metavar="COL", help="Candidate: column of its probability of the logged action (no DR)."),
]
TargetLongFile = Annotated[
    str | None,
    typer.Option(help="Candidate: a long file of (row id, action, prob) rows.", metavar="FILE"),
]
RowCol = Annotated[str | None, typer.Option(metavar="COL", help="Row id column shared with --target-long.")]
Estimators = Annotated[
    list[str] | None,
    typer.Option(metavar="NAME", help=f"One of {', '.join(ESTIMATORS)} (repeat; default: all)."),
]
Bootstrap = Annotated[int, typer.Option(min=100, max=100_000, metavar="N", help="Bootstrap resamples.")]
Alpha = Annotated[float, typer.Option(min=0.001, max=0.5, metavar="ALPHA", help="1 - interval level.")]
Seed = Annotated[int, typer.Option(metavar="N", help="Seed of the bootstrap.")]
Output = Annotated[Literal["table", "json"], typer.Option(help="table or json on stdout.")]


def _estimators(estimator: list[str] | None) -> list[EstimatorName] | None:
    """The estimators asked for, in ESTIMATORS' order (None: all); an unknown name is a user error."""
    bad = [e for e in estimator or () if e not in ESTIMATORS]
    if bad:
        raise UserError(f"--estimator {bad[0]!r}: choose among {', '.join(ESTIMATORS)}")
    return [e for e in ESTIMATORS if e in estimator] if estimator else None


def _print_estimates(estimates: list[Estimate], alpha: float, output: str) -> None:
    if output == "json":
        print(json.dumps([dataclasses.asdict(e) for e in estimates], indent=2))
        return
    level = f"{1 - alpha:.0%} interval"
    print(f"{'estimator':<10}{'value':>12}  {level}")
    for e in estimates:
        print(f"{e.estimator:<10}{e.value:>12.4f}  [{e.low:.4f}, {e.high:.4f}]")


@app.command()
def ope(
    table: Table,
    action_col: ActionCol = "action",
    reward_col: RewardCol = "reward",
    propensity_col: PropensityCol = "propensity",
    feature_col: FeatureCol = None,
    group_col: GroupCol = None,
    target_action_col: TargetActionCol = None,
    target_prob_prefix: TargetProbPrefix = None,
    target_logged_prob_col: TargetLoggedProbCol = None,
    target_long: TargetLongFile = None,
    row_col: RowCol = None,
    estimator: Estimators = None,
    n_bootstrap: Bootstrap = 1000,
    alpha: Alpha = 0.05,
    seed: Seed = 0,
    output: Output = "table",
    version: Annotated[bool, version_option()] = False,
) -> int:
    """Estimate the candidate's value per logged row. Exit codes: 0 done; 2 bad input."""
    target = _target(target_action_col, target_prob_prefix, target_logged_prob_col, target_long, row_col)
    chosen = _estimators(estimator)
    try:
        estimates = estimate_from_table(
            table,
            action_col=action_col,
            reward_col=reward_col,
            propensity_col=propensity_col,
            target=target,
            feature_cols=feature_col or (),
            group_col=group_col,
            estimators=chosen,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            seed=seed,
        )
    except ValueError as exc:  # the table's fault: its message names the column and the fix
        raise UserError(str(exc)) from None
    _print_estimates(estimates, alpha, output)
    return 0


def main(argv: list[str] | None = None, prog: str = "nba-eval ope") -> int:
    return run(app, argv, prog=prog)


if __name__ == "__main__":
    sys.exit(main())
