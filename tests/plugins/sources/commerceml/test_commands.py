"""``elt load-1c`` (``commands.register``) run in-process on bad and good input.

Each bad input must end in exactly one ``✘ PATH: reason`` line on stderr and exit code 1, never a
traceback; a package that was identified (it has XML files) is journaled ``failed`` in
``bronze.onec_packages``, one that was not (no path, no XML) is not journaled at all. The lakehouse is
the empty embedded one of ``tests/conftest.py`` (``catalog`` fixture).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
from pyiceberg.catalog.sql import SqlCatalog

from elt_platform.sources.commerceml.commands import EXIT_FAILED, register
from elt_platform.sources.commerceml.loader import journal_row
from elt_platform.sources.commerceml.package import package_fingerprint

XXE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<!DOCTYPE КоммерческаяИнформация [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    "<КоммерческаяИнформация><Каталог><Товары><Товар><Ид>&xxe;</Ид></Товар></Товары></Каталог>"
    "</КоммерческаяИнформация>"
)
HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>504 Gateway Time-out</title></head><body></body></html>"
NO_FLAG = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация ВерсияСхемы="2.05">'
    "<ПакетПредложений><Ид>pk#</Ид><Предложения><Предложение><Ид>p1</Ид><Наименование>Кеды</Наименование>"
    "</Предложение></Предложения></ПакетПредложений></КоммерческаяИнформация>"
)


def run_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="elt")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "no_such_package"


def _empty_directory(tmp_path: Path) -> Path:
    (tmp_path / "session").mkdir()
    return tmp_path / "session"


def _text_file(tmp_path: Path) -> Path:
    (tmp_path / "export.txt").write_text("not a package", encoding="utf-8")
    return tmp_path / "export.txt"


def _not_xml(tmp_path: Path) -> Path:
    (tmp_path / "import.xml").write_text("Ошибка: сеанс обмена завершён\n", encoding="utf-8")
    return tmp_path / "import.xml"


def _doctype(tmp_path: Path) -> Path:
    (tmp_path / "import.xml").write_text(XXE, encoding="utf-8")
    return tmp_path / "import.xml"


def _html_page_in_a_package(tmp_path: Path, cml: Path) -> Path:
    package = tmp_path / "session"
    package.mkdir()
    shutil.copy(cml / "carono_cml2.07" / "offers.xml", package / "offers.xml")
    (package / "import.xml").write_text(HTML_PAGE, encoding="utf-8")
    return package


def _foreign_root(tmp_path: Path) -> Path:
    (tmp_path / "import.xml").write_text("<?xml version='1.0'?><error>timeout</error>", encoding="utf-8")
    return tmp_path / "import.xml"


# (build the input, text the ✘ line must hold after "✘ PATH: ", identified → journaled failed)
BAD_INPUT = {
    "missing-path": (_missing, "no such file or directory", False),
    "empty-directory": (_empty_directory, "no XML file in the package (it is empty;", False),
    "not-a-package-file": (_text_file, "no XML file in the package (only export.txt;", False),
    "not-xml": (_not_xml, "not a CommerceML document: not XML: it starts with 'Ошибка", True),
    "doctype-entity": (_doctype, "refused: ENTITY declaration in the prolog", True),
    "html-page-as-import-xml": (
        _html_page_in_a_package,
        "import.xml: not a CommerceML document: an HTML page (<!DOCTYPE html>)",
        True,
    ),
    "foreign-root": (_foreign_root, "not a CommerceML document: root element <error>", True),
}


@pytest.mark.parametrize(("build", "reason", "identified"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_ends_in_one_line_and_a_failed_journal_row(
    build, reason: str, identified: bool, catalog: SqlCatalog, cml: Path, tmp_path: Path, capsys
) -> None:
    path = build(tmp_path, cml) if build is _html_page_in_a_package else build(tmp_path)

    code, out, err = run_command(["load-1c", str(path)], capsys)

    assert code == EXIT_FAILED and out == ""
    assert err.count("\n") == 1 and err.startswith(f"✘ {path}: {reason}"), err
    assert "Traceback" not in err
    if identified:
        row = journal_row(package_fingerprint(path), catalog.load_table("bronze.onec_packages"))
        assert (row["status"], row["attempts"]) == ("failed", 1)
        assert reason.split(": ")[-1] in row["error"]
        assert "journaled failed" in err
    else:  # nothing identified, nothing journaled (the lakehouse is not even touched)
        assert not catalog.table_exists("bronze.onec_packages")
        assert err.rstrip().endswith("(nothing loaded, nothing journaled)")


def test_a_package_without_the_delta_attribute_is_printed_as_a_full_export(
    catalog: SqlCatalog, tmp_path: Path, capsys
) -> None:
    (tmp_path / "offers.xml").write_text(NO_FLAG, encoding="utf-8")

    code, out, err = run_command(["load-1c", str(tmp_path), "--run-id", "t"], capsys)

    assert (code, err) == (0, "")
    assert "mode:    catalog, full export (no СодержитТолькоИзменения: full by default)," in out
    assert "delta" not in out
    row = journal_row(package_fingerprint(tmp_path), catalog.load_table("bronze.onec_packages"))
    assert (row["status"], row["is_full"], row["load_mode"]) == ("loaded", True, "catalog")


def test_auto_mode_loads_a_prices_only_package_on_the_stocks_path(
    catalog: SqlCatalog, cml: Path, tmp_path: Path, capsys
) -> None:
    shutil.copy(cml / "turumburumstudio_cml3.1" / "prices.xml", tmp_path / "prices.xml")

    code, out, _ = run_command(["load-1c", str(tmp_path)], capsys)

    assert code == 0
    assert "mode:    stocks, delta (only changes)," in out  # the file declares СодержитТолькоИзменения="true"
    row = journal_row(package_fingerprint(tmp_path), catalog.load_table("bronze.onec_packages"))
    assert (row["load_mode"], row["is_full"]) == ("stocks", False)
