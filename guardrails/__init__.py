"""The deterministic guardrail layer and the rules policy it falls back to. Nothing here calls an LLM.

eligibility.check_eligibility -> (policy) -> engine.finalize -> Decision + GuardrailReport;
invariants.violations is the independent oracle of what a final decision must satisfy.
"""
