import pytest

from licenses.identifiers import (
    IdentifierError,
    is_valid_identifier,
    make_identifier,
    mod37_36,
    new_serial,
    parse_identifier,
)

# The real identifiers of standards §3.1 (Hunan, Zhejiang, Jilin) and the documented demo example.
REAL_IDENTIFIERS = [
    "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
    "1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
    "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F",
]


@pytest.mark.parametrize("identifier", REAL_IDENTIFIERS)
def test_real_identifiers_parse_and_their_check_character_matches(identifier):
    parsed = parse_identifier(identifier)
    assert str(parsed) == identifier


def test_parts_of_a_real_identifier_are_split_correctly():
    parsed = parse_identifier(REAL_IDENTIFIERS[1])
    assert parsed.type_code == "11100000000013338W009"
    assert parsed.issuer_code == "11330105002500287C"
    assert parsed.serial == "2025052201"
    assert parsed.version == 2


def test_make_identifier_reproduces_the_documented_example():
    assert make_identifier("11100000000013338W011", "11321203123456788H", "2018000001") == (
        "1.2.156.3005.2.11100000000013338W011.11321203123456788H.2018000001.001.4"
    )


@pytest.mark.parametrize("identifier", REAL_IDENTIFIERS)
def test_every_wrong_check_character_is_rejected(identifier):
    body, check = identifier.rsplit(".", 1)
    for other in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        if other != check:
            with pytest.raises(IdentifierError, match="校验位"):
                parse_identifier(f"{body}.{other}")


def test_mod37_36_detects_every_single_character_substitution():
    body = "11100000000013338W03211220000013544541J2430599001"
    check = mod37_36(body)
    for i, ch in enumerate(body):
        for other in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            if other != ch:
                assert mod37_36(body[:i] + other + body[i + 1 :]) != check


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.2.156.3005.1.11100000000013338W011.11430000006122244L.20230000403.001.U", "开头"),
        ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.U", "5 段"),
        ("1.2.156.3005.2.11100000000013338W01.11430000006122244L.20230000403.001.U", "类型代码"),
        ("1.2.156.3005.2.11100000000013338W011.1143000000612224L.20230000403.001.U", "颁发机构代码"),
        ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.2023-0403.001.U", "流水号"),
        ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.01.U", "版本号"),
        ("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.000.U", "版本号"),
    ],
)
def test_malformed_identifiers_say_which_part_is_wrong(text, message):
    with pytest.raises(IdentifierError, match=message):
        parse_identifier(text)
    assert not is_valid_identifier(text)


def test_next_version_increments_the_version_segment_and_recomputes_the_check():
    parsed = parse_identifier(REAL_IDENTIFIERS[0])
    nxt = parsed.next_version()
    assert nxt.version == 2
    assert str(nxt).split(".")[-2] == "002"
    assert is_valid_identifier(str(nxt))


def test_new_serials_start_with_the_year_and_are_distinct():
    serials = {new_serial(2026) for _ in range(1000)}
    assert len(serials) == 1000
    assert all(s.startswith("2026") and len(s) == 14 for s in serials)
