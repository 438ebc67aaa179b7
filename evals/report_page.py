"""The eval report's page: the jinja2 template (autoescaped) and the words it explains itself with."""

from __future__ import annotations

# headline colours (the browser test finds the headline by them): border by verdict, background
VERDICT_COLORS = {"better": "#1a7f37", "worse": "#b42318", "unclear": "#9a6700"}
HEADLINE_BG = "#f6f8fa"

GLOSSARY: list[tuple[str, str]] = [
    (
        "Contactable customer",
        "A customer of the sample whom eligibility lets a policy contact (consent, global suppression, "
        "the suppression window, the frequency cap and quiet hours all allow it). Every policy, the "
        "oracle included, is scored on the same contactable customers under the same discount cap. "
        "A customer a policy decides not to contact earns that policy nothing.",
    ),
    (
        "Per contactable customer / per logged touch",
        "Per contactable customer: the average over customers, each counting once however many past "
        "campaign touches they had. This is the figure to plan with. Per logged touch: the average over "
        "the past campaign touches of those customers, so often-touched customers weigh more; the "
        "estimators are checked against the truth there.",
    ),
    (
        "True value",
        "What the policy would really earn, computed from the synthetic generator's hidden truth. Only a "
        "synthetic warehouse has it; on real data the report shows the estimates alone.",
    ),
    (
        "Oracle",
        "For each customer, the best action that eligibility and the discount cap allow, picked with the "
        "hidden truth. No real policy can know it: it is the ceiling.",
    ),
    (
        "Share of oracle",
        "A policy's true value as a percentage of the oracle's. 100% means it picks the best allowed "
        "action for every customer; the uniform-random policy shows what no skill at all earns.",
    ),
    (
        "Lift over no contact",
        "What a policy adds to leaving customers alone: its true value minus what the customers it "
        "contacts would have earned with no message at all (their organic conversion and spend, as the "
        "holdouts see it). This is what a campaign buys; a negative lift means the messages cost sales.",
    ),
    (
        "Oracle without a constraint",
        "The oracle again with one constraint lifted: the SMS frequency cap, the discount cap (each "
        "template's banked maximum still holds) or channel consent (the global suppression list still "
        "holds). The difference to the oracle is what that constraint costs per contactable customer; "
        "customers only the lift would let anyone contact add their value to it.",
    ),
    (
        "IPS (inverse propensity scoring)",
        "Estimates a policy's value from past campaigns alone: the outcomes of past touches that match "
        "what the policy would have done, each weighted by one over the chance the past campaign had of "
        "choosing it. Unbiased, but noisy when those chances are small.",
    ),
    (
        "SNIPS (self-normalised IPS)",
        "IPS divided by the average weight: slightly biased, much steadier when a few weights are large.",
    ),
    (
        "DR (doubly robust)",
        "A model's prediction of every action's outcome, corrected by the weighted errors of that model "
        "on the matching past touches. Right if either the model or the past chances are right; the "
        "estimate this report leads with.",
    ),
    (
        "95% interval",
        "The range that would hold the true value in 95 of 100 repeats (a bootstrap; per contactable "
        "customer it resamples customers). A difference whose whole interval is above zero is a win.",
    ),
    (
        "ESS (effective sample size)",
        "How many past touches the estimate is worth after weighting. Far fewer than the logged touches "
        "means a noisy estimate.",
    ),
    (
        "Support (actions / rows)",
        "Share of the policy's actions that past campaigns ever took for that segment, and share of the "
        "policy's choices on past touches that fall on such actions. Below 1.00 the past campaigns cannot "
        "speak for part of the policy and the estimate is biased there.",
    ),
]

SCORER_HELP: dict[str, str] = {
    "schema_validity": "decisions that are valid against the decision contract",
    "guardrail_interventions": "decisions a guardrail changed (fixed) or stopped (failed)",
    "fallback_rate": "LLM decisions that fell back to the rules",
    "offer_consistency": "messages whose stated discount matches the decision",
    "sms_segments": "SMS length in segments, within the channel's limit",
    "segment_alignment": "decisions whose template fits the segment's strategy",
    "message_quality": "messages that are personal and readable",
    "discount_cost": "average final discount",
    "tokens_latency": "LLM tokens per decision",
}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Eval: {{ r.candidate.name }} vs {{ r.baseline.name }} ({{ r.eval_id }})</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 16px 24px;
  color: #222; background: #fff; line-height: 1.45; }
h1 { font-size: 26px; margin: 8px 0 4px; } h2 { margin: 28px 0 8px; } h3 { margin: 16px 0 4px; }
.meta { color: #555; margin: 0 0 12px; } .meta b { color: #222; font-weight: 600; }
.headline { border-left: 6px solid {{ colors.unclear }}; background: {{ headline_bg }}; padding: 10px 14px;
  margin: 10px 0; font-size: 19px; }
.headline.better { border-color: {{ colors.better }}; } .headline.worse { border-color: {{ colors.worse }}; }
.headline small { display: block; font-size: 14px; color: #555; margin-top: 4px; }
.gate { font-weight: 600; } .pass { color: {{ colors.better }}; } .fail { color: {{ colors.worse }}; } .muted { color: #666; }
.scroll { overflow-x: auto; max-width: 100%; } .role { color: #666; font-size: 12px; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
.chart { margin: 8px 0 18px; } .nowrap { white-space: nowrap; } td.help { min-width: 16em; }
td.failures { font-size: 12px; min-width: 24em; }
dl.glossary dt { font-weight: 600; margin-top: 8px; } dl.glossary dd { margin: 2px 0 0 0; max-width: 75ch; }
@media (max-width: 700px) { body { padding: 8px 10px; } th, td { padding: 3px 5px; } h1 { font-size: 21px; } .headline { font-size: 16px; } }
</style></head><body>
<h1>Eval: {{ r.candidate.name }} vs {{ r.baseline.name }}</h1>
<p class="meta"><b>Created</b> <span class="nowrap">{{ when(r.created_at) }}</span> &middot; <b>data as of</b>
<span class="nowrap">{{ when(r.data_as_of) }}</span>
&middot; <b>goal</b> {{ r.candidate.goal }}, primary metric {{ r.primary_metric }} &middot; <b>discount cap</b>
{{ num(r.candidate.discount_cap) }}% &middot; {{ "{:,}".format(r.sample_size) }} customers sampled,
{{ "{:,}".format(r.contactable) }} contactable, {{ "{:,}".format(r.n_logged) }} logged touches &middot;
<b>truth</b> {{ "known (synthetic generator)" if r.has_truth else "unknown" }} &middot; seed {{ r.seed }}
&middot; eval {{ r.eval_id }}
{% if r.evaluated_from %}&middot; <b>time split</b>: scored on touches from
<span class="nowrap">{{ when(r.evaluated_from) }}</span> (a learned policy trains on those before){% endif %}
{% for role, p in (("candidate", r.candidate), ("baseline", r.baseline)) %}{% if p.get("identity") and p.identity != p.name %}
&middot; <b>{{ role }}</b> {{ p.identity }}{% endif %}{% endfor %}</p>
<section id="headline">
{% for c, word, note in comparisons %}<p class="headline {{ word }}">{{ c.sentence }}.
<small>{{ metric_title(c.metric) }}, DR estimate per contactable customer ({{ "{:,}".format(r.contactable) }}
customers); interval width {{ "%.3g"|format(c.width) }}{% if note %}; {{ note }}{% endif %}.</small></p>
{% else %}<p class="headline worse">No comparison: no customer of the sample could be contacted by any policy.</p>
{% endfor %}
<p class="gate {{ 'pass' if gate_ok else 'fail' }}">{{ gate }}</p>
<p class="muted">Terms (DR, oracle, contactable customer, ...) are explained under
<a href="#glossary">How to read this report</a>.</p>
</section>

<h2 id="per-customer">Value per contactable customer</h2>
<div class="scroll"><table><tr><th>policy</th><th class="text">metric</th><th>DR estimate</th>
<th>95% interval</th><th>true value</th><th>share of oracle</th><th>lift over no contact</th></tr>
{% for m in v.metrics %}{% for p in v.policies %}{% set c = v.cv(p, m) %}{% if c %}<tr><td>{{ p }}<br><span class="role">{{ v.roles[p] }}</span></td><td class="text">{{ m }}</td><td>{{ v.shown(m, c.dr_value) }}</td>
<td class="nowrap">[{{ v.shown(m, c.dr_low) }}, {{ v.shown(m, c.dr_high) }}]</td><td>{{ v.shown(m, c.true_value) }}</td>
<td>{{ share(c.share_of_oracle) }}</td><td>{{ v.shown(m, c.true_lift) }}</td></tr>{% endif %}{% endfor %}{% endfor %}</table></div>
{% if r.organic_value %}<p class="muted">Left alone, with no message at all, a contactable customer earns
{% for m in v.metrics %}{{ v.shown(m, r.organic_value.get(m)) }} ({{ m }}){{ ", " if not loop.last else "" }}{% endfor %}
by the generator's truth; the lift is each policy's true value over that.</p>{% endif %}
{% for svg in customer_svgs %}<div class="chart">{{ svg | safe }}</div>{% endfor %}

{% if r.constraint_costs %}<h2 id="constraints">What the constraints cost</h2>
<p class="muted">The oracle with one constraint lifted at a time, by the generator's truth, per contactable
customer: the most that constraint forgoes. Set it against the gap between a policy and the oracle.</p>
<div class="scroll"><table><tr><th>constraint lifted</th><th class="text">metric</th><th>oracle</th>
<th>oracle without it</th><th>cost per contactable customer</th><th>customers it newly reaches</th>
<th>of the cost, from those customers</th></tr>
{% for m in v.metrics %}{% for c in r.constraint_costs if c.metric == m %}<tr><td>{{ c.label }}</td>
<td class="text">{{ m }}</td><td>{{ v.shown(m, c.oracle_value) }}</td><td>{{ v.shown(m, c.lifted_value) }}</td>
<td>{{ v.shown(m, c.cost) }}</td><td>{{ "{:,}".format(c.newly_contactable) }}</td>
<td>{{ v.shown(m, c.cost_from_newly_contactable) }}</td></tr>{% endfor %}{% endfor %}
</table></div>{% endif %}

<h2 id="segments">By segment</h2>
{% if segment_svgs %}<p class="muted">True value per contactable customer in each segment (from the generator's
truth), and each policy's share of the oracle there.</p>
{% for svg in segment_svgs %}<div class="chart segment-chart">{{ svg | safe }}</div>{% endfor %}
{% for m in v.metrics %}<div class="scroll"><table><tr><th>segment ({{ m }})</th><th>customers</th>
{% for p in v.policies %}<th>{{ p }}</th>{% endfor %}</tr>
{% for seg in v.segments %}<tr><td>{{ seg }}</td><td>{{ "{:,}".format(v.cv(v.policies[0], m, seg).customers if v.cv(v.policies[0], m, seg) else 0) }}</td>
{% for p in v.policies %}{% set c = v.cv(p, m, seg) %}<td>{% if c %}{{ v.shown(m, c.true_value) }}
<span class="muted">({{ share(c.share_of_oracle) }})</span>{% else %}-{% endif %}</td>{% endfor %}</tr>{% endfor %}
</table></div>{% endfor %}
{% else %}<p>Per-segment values come from the generator's truth, which this warehouse does not have.</p>{% endif %}

<h2 id="glossary">How to read this report</h2>
<dl class="glossary">{% for term, text in glossary %}<dt>{{ term }}</dt><dd>{{ text }}</dd>{% endfor %}</dl>

<h2 id="per-touch">Estimator check: value per logged touch</h2>
<p class="muted">Each estimator against the truth, on the past campaign touches of the contactable customers.
No action earns 0.</p>
<div class="chart">{{ value_svg | safe }}</div>
<div class="scroll"><table><tr><th>policy</th><th>estimator</th><th>metric</th><th>estimate</th><th>95% interval</th>
<th>true value</th><th>error</th><th>interval covers truth</th><th>ESS</th><th>support (actions / rows)</th></tr>
{% for x in r.policy_values %}<tr><td>{{ x.policy }}</td><td>{{ x.estimator | upper }}</td><td>{{ x.metric }}</td>
<td>{{ fmt(x.value) }}</td><td>[{{ fmt(x.low) }}, {{ fmt(x.high) }}]</td><td>{{ fmt(x.true_value) }}</td>
<td>{{ pct(x.value, x.true_value) }}</td><td>{{ "-" if x.covers_truth is none else ("yes" if x.covers_truth else "no") }}</td>
<td>{{ "{:,.0f}".format(x.ess) }}</td><td>{{ "%.2f / %.2f" | format(x.support_action_share, x.support_row_share) }}</td></tr>
{% endfor %}</table></div>

<h2 id="prompts">Policies and prompt versions</h2>
<div class="scroll"><table><tr><th>policy</th><th>mode</th><th>prompt</th><th>schema valid</th><th>fallback</th>
<th>interventions</th><th>mean discount</th><th>tokens</th><th>latency ms</th><th>DR, {{ r.primary_metric }} per touch</th></tr>
{% for p in r.prompt_versions %}<tr><td>{{ p.policy }}</td><td>{{ p.mode }}</td><td>{{ p.prompt_version }}</td>
<td>{{ share(p.schema_validity) }}</td><td>{{ share(p.fallback_rate) }}</td><td>{{ share(p.intervention_rate) }}</td>
<td>{{ fmt(p.mean_discount) }}%</td><td>{{ fmt(p.mean_tokens) }}</td><td>{{ fmt(p.mean_latency_ms) }}</td>
<td>{{ fmt(p.ope_value) }} [{{ fmt(p.ope_low) }}, {{ fmt(p.ope_high) }}]</td></tr>{% endfor %}</table></div>

<h2 id="guardrails">Guardrail interventions</h2>
<div class="chart">{{ interventions_svg | safe }}</div>
{% if quiet_checks %}<p class="muted">No intervention by: {{ quiet_checks | join(", ") }}.</p>{% endif %}
<h2 id="discounts">Discounts</h2>
<div class="chart">{{ discount_svg | safe }}</div>

<h2 id="scorers">Scorers</h2>
{% for policy, scores in r.scores.items() %}<h3>{{ policy }}</h3><div class="scroll"><table>
<tr><th>scorer</th><th class="text">what it measures</th><th>value</th><th>result</th><th class="text">failures (by customer)</th></tr>
{% for s in scores %}<tr><td>{{ s.name }}</td><td class="text help">{{ scorer_help.get(s.name, "") }}</td>
<td class="nowrap">{{ scorer_value(s.name, s.value) }}</td>
<td class="{{ 'muted' if s.passed is none else ('pass' if s.passed else 'fail') }}">{{ result(s.passed) }}</td>
{% set shown, more = failures(s.failures) %}<td class="text failures">{% for f in shown %}{{ f }}<br>{% endfor %}
{% if more %}<span class="muted">and {{ more }} more (report.json lists the first 50)</span>{% endif %}</td></tr>
{% endfor %}</table></div>{% endfor %}

<h2 id="cases">Golden and adversarial cases</h2>
<div class="scroll"><table><tr><th>suite</th><th class="text">case</th><th>policy</th><th>result</th><th class="text">failures</th></tr>
{% for c in r.cases %}<tr><td>{{ c.suite }}</td><td class="text">{{ c.name }}</td><td>{{ c.policy }}</td>
<td class="{{ 'pass' if c.passed else 'fail' }}">{{ result(c.passed) }}</td><td class="text">{{ c.failures | join("; ") }}</td></tr>{% endfor %}
</table></div>
</body></html>
"""
