"""docs/suites.md stays true: its example is the tested one and it documents every check."""

import re
from pathlib import Path

from experiments.checks import CHECK_TYPES
from experiments.suites import load_suite

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "suites.md").read_text()


def test_the_docs_example_is_the_example_suite_the_tests_use():
    example = (Path(__file__).parent / "suites" / "example.yaml").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    assert blocks[0] == example
    assert load_suite(blocks[0]).name == "example"


def test_the_docs_describe_every_check_type_and_its_parameters():
    for name, ctype in CHECK_TYPES.items():
        section = DOC.split(f"**`{name}`**", 1)
        assert len(section) == 2, f"{name} is not documented"
        text = section[1].split("**`", 1)[0]
        for param in ctype.params:
            assert re.search(f"`{param}[`:]", text), f"{name}: parameter {param} is not documented"
