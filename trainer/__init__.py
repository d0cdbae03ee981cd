"""The learning code: model loading, prompts, parsing, rollouts, GRPO and SFT.

Importable and testable without Django; the simulator-backed environment is handed in.
"""
