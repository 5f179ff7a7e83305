"""Code problems with tests: statement, reference solution and unit tests, mutation-tested."""

from domains.code_tests.domain import CodeTestsDomain
from domains.code_tests.parse import parse_item, render_item
from domains.code_tests.verify import mutants

__all__ = ["CodeTestsDomain", "mutants", "parse_item", "render_item"]
