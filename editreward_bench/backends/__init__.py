"""Model backends: what answers a judge's prompts (local transformers, OpenAI-compatible APIs)."""
