"""Math word problems labelled by self-consistency (registered as the domain ``math``)."""

from domains.math_sc.domain import MathDomain, dropped_scale, majority, wrong_step
from domains.math_sc.parse import final_answer, normalise_number, parse_problem

__all__ = ["MathDomain", "dropped_scale", "final_answer", "majority", "normalise_number", "parse_problem", "wrong_step"]
