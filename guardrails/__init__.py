"""The deterministic guardrail layer. Nothing here calls an LLM, and nothing here imports a policy:
the rules fallback is handed to `engine.finalize` by the pipeline.

eligibility.check_eligibility -> (a policy proposes) -> engine.finalize -> Decision + GuardrailReport.
The independent checker of what a final decision must satisfy is testing/invariants.py.
"""
