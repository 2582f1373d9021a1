from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.transformer import BadRow, Record, main, read_categories, read_products

HEADER = "asin,title,imgUrl,productURL,stars,reviews,price,listPrice,category_id,isBestSeller,boughtInLastMonth\n"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "amazon_products.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_quoted_commas_newlines_and_unicode_survive(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'B0000000A1,"Crème brûlée set, 2-Pack\n(""blue"")",https://i.example/u.jpg,https://www.amazon.com/dp/p,4.5,12,9.99,,7,True,100\n',
    )
    [record] = list(read_products(path))
    assert record == Record(
        2,
        {
            "asin": "B0000000A1",
            "title": 'Crème brûlée set, 2-Pack\n("blue")',
            "imgUrl": "https://i.example/u.jpg",
            "productURL": "https://www.amazon.com/dp/p",
            "stars": 4.5,
            "reviews": 12,
            "price": 9.99,
            "listPrice": 0.0,
            "category_id": 7,
            "isBestSeller": True,
            "boughtInLastMonth": 100,
        },
    )


def test_bad_rows_are_reported_with_their_line_and_the_rest_goes_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "B0000000A1,ok,https://i.example/u.jpg,https://www.amazon.com/dp/p,4.5,1,1.0,0.0,7,False,0\n"
        "B0000000A2,bad price,https://i.example/u.jpg,https://www.amazon.com/dp/p,4.5,1,abc,0.0,7,False,0\n"
        "B0000000A3,bad bool,https://i.example/u.jpg,https://www.amazon.com/dp/p,4.5,1,1.0,0.0,7,maybe,0\n"
        "short,row\n"
        "B0000000A4,negative,https://i.example/u.jpg,https://www.amazon.com/dp/p,4.5,1,-3,0.0,7,False,0\n"
        "B0000000A5,ok,https://i.example/u.jpg,https://www.amazon.com/dp/p,4.5,1,1.0,0.0,7,False,0\n",
    )
    items = list(read_products(path))
    assert [type(i) for i in items] == [Record, BadRow, BadRow, BadRow, BadRow, Record]
    bad = {i.line: i.reason for i in items if isinstance(i, BadRow)}
    assert bad[3] == "price: not a number: 'abc'"
    assert bad[4] == "isBestSeller: not true or false: 'maybe'"
    assert bad[5].startswith("asin: not 10 upper-case letters or digits; stars: Field required")  # short row
    assert bad[6] == "price: Input should be greater than or equal to 0"


def test_whole_number_counts_written_as_floats_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path, "B0000000A1,t,https://i.example/u.jpg,https://www.amazon.com/dp/p,4.0,3.0,1,0,7.0,False,50.0\n"
    )
    [record] = list(read_products(path))
    assert isinstance(record, Record)
    assert (record.data["reviews"], record.data["category_id"], record.data["boughtInLastMonth"]) == (3, 7, 50)


def test_a_file_without_the_kaggle_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="header lacks asin"):
        list(read_products(path))


def test_categories(tmp_path: Path) -> None:
    path = tmp_path / "amazon_categories.csv"
    path.write_text("id,category_name\n1,Beading & Jewelry Making\n2, \nx,Bad id\n", encoding="utf-8")
    items = list(read_categories(path))
    assert items[0] == Record(2, {"id": 1, "category_name": "Beading & Jewelry Making"})
    assert [type(i) for i in items[1:]] == [BadRow, BadRow]


def test_command_line_writes_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "B0000000A1,t,https://i.example/u.jpg,https://www.amazon.com/dp/p,4.0,3,1,0,7,False,50\n")
    assert main([str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["asin"] == "B0000000A1"


def test_empty_number_cells_are_absent_not_zero(tmp_path: Path) -> None:
    """A missing price is not a price of 0: required -> the row is refused, optional -> the default."""
    path = write(tmp_path, "B0000000A1,t,,,,,,,7,,\nB0000000A2,t,,,4,3,1.5,,7,,\n")
    items = list(read_products(path))
    assert items[0] == BadRow(2, "stars: Field required; reviews: Field required; price: Field required")
    assert items[1] == Record(3, {**items[1].data, "listPrice": 0.0, "isBestSeller": False, "boughtInLastMonth": 0})


def test_a_spreadsheet_csv_utf8_file_reads_like_the_plain_file(tmp_path: Path) -> None:
    """Byte-order mark and CRLF line ends, as Excel and LibreOffice save "CSV UTF-8"."""
    plain = write(tmp_path, "B0000000A1,t,,,4,3,1.5,,7,,\n")
    marked = tmp_path / "marked.csv"
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes().replace(b"\n", b"\r\n"))
    assert list(read_products(marked)) == list(read_products(plain))
    categories = tmp_path / "amazon_categories.csv"
    categories.write_bytes(b"\xef\xbb\xbfid,category_name\r\n1,Toys\r\n")
    assert list(read_categories(categories)) == [Record(2, {"id": 1, "category_name": "Toys"})]


def test_empty_cells_past_the_header_are_no_data_but_a_value_there_refuses_the_row(tmp_path: Path) -> None:
    path = write(tmp_path, "B0000000A1,t,,,4,3,1.5,,7,,,\nB0000000A2,t,,,4,3,1.5,,7,,,,x\n")
    first, second = read_products(path)
    assert isinstance(first, Record) and first.data["asin"] == "B0000000A1"
    assert second == BadRow(3, "more fields than the header has: ['', 'x']")


def test_a_byte_that_is_not_utf8_reads_as_the_replacement_character(tmp_path: Path) -> None:
    """As Spark's CSV reader reads it for the backfill; the other rows go on (it used to stop the client)."""
    path = tmp_path / "amazon_products.csv"
    path.write_bytes(HEADER.encode() + b"B0000000A1,Ti\xfftle,,,4,3,1.5,,7,,\nB0000000A2,t,,,4,3,1.5,,7,,\n")
    assert [item.data["title"] for item in read_products(path)] == ["Ti\ufffdtle", "t"]


def test_a_header_that_repeats_a_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "amazon_products.csv"
    path.write_text(HEADER.replace("listPrice", "Price"))
    with pytest.raises(ValueError, match="header lacks listPrice"):
        list(read_products(path))
    path.write_text(HEADER.strip() + ",PRICE\n")
    with pytest.raises(ValueError, match="header repeats PRICE, price"):
        list(read_products(path))
