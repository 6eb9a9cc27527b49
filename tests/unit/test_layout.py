# Copyright: crpbot-ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The suite's own layout: pytest (rootdir import mode) cannot collect two test files of one basename."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_file_basenames_are_unique():
    names = Counter(path.name for path in TESTS.rglob("test_*.py") if "fixtures" not in path.parts)
    assert [name for name, count in names.items() if count > 1] == []
