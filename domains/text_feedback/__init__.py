"""Open-ended text with AI feedback: an LLM judge's yes/no probability or a reward model."""

from domains.text_feedback.domain import TextFeedbackDomain
from domains.text_feedback.judge import RewardModel, yes_probability

__all__ = ["RewardModel", "TextFeedbackDomain", "yes_probability"]

