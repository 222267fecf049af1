"""Trainer settings the exact-comparison tests pin: TRL's own two-row forward in fp32, no recomputation.

The defaults (params.yaml: shared_prompt forward, bf16 where the CPU has it, gradient checkpointing) are
the fast path; tests that compare reverso's losses with TRL's to 1e-6 compare against TRL's own path.
"""

TRL_EXACT = {"forward": "stock", "bf16": False, "gradient_checkpointing": False}
