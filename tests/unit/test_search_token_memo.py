"""catalog.search.cache.TokenMemo: small reads kept per search state token, never across tokens."""

from __future__ import annotations

from catalog.search.cache import TokenMemo, at_token, memoised, memoised_names


def test_a_read_is_kept_under_its_token_and_dropped_with_it() -> None:
    reads: list[int] = []

    def read() -> int:
        reads.append(1)
        return len(reads)

    memo = TokenMemo()
    with at_token(7, memo):
        assert memoised("k", read) == 1
        assert memoised("k", read) == 1
    with at_token(8, memo):  # a new token: what was kept under 7 is not served
        assert memoised("k", read) == 2
    with at_token(None, memo):  # no token (no state row): nothing is kept
        assert memoised("k", read) == 3
        assert memoised("k", read) == 4
    assert memoised("k", read) == 5  # outside a scope every call reads


def test_names_are_read_only_for_keys_not_yet_known_under_the_token() -> None:
    asked: list[list[str]] = []
    table = {"a": "甲", "b": "乙"}

    def read(keys: list[str]) -> dict[str, str]:
        asked.append(list(keys))
        return {k: table[k] for k in keys if k in table}

    memo = TokenMemo()
    with at_token(1, memo):
        assert memoised_names("division", ["a", "x"], read) == {"a": "甲"}
        assert memoised_names("division", ["a", "b", "x"], read) == {"a": "甲", "b": "乙"}
    assert asked == [["a", "x"], ["b"]]  # "x" is known to have no name under this token
    table["a"] = "丙"
    with at_token(2, memo):
        assert memoised_names("division", ["a"], read) == {"a": "丙"}


def test_a_read_that_found_nothing_is_kept_too() -> None:
    reads: list[int] = []

    def read() -> None:
        reads.append(1)

    memo = TokenMemo()
    with at_token(3, memo):
        assert memoised("nothing", read) is None
        assert memoised("nothing", read) is None
    assert reads == [1]
