"""Benchmark the CommerceML parser against a bare ``lxml.etree.iterparse`` pass on a big offers file.

Usage::

    python bench/commerceml_parse.py [--size-mb 1024] [--out DIR] [--fixture PATH] [--keep]

Generates an ``offers.xml`` of the requested size by repeating the real ``<Предложение>`` elements of
a fixture (default: ``carono_cml2.07/offers.xml``: article, characteristics, a price, both the
offer total and a per-warehouse stock) with fresh ``uuid#uuid`` ids, writing as it goes. Then it
times, each in its own subprocess so that neither pass inflates the other's memory figure:

(a) the ceiling: ``iterparse`` over every element, clearing it and its previous siblings;
(b) ``elt_platform.sources.commerceml.parser.parse_file`` consuming every record.

It prints MB/s for both, the parser/ceiling throughput ratio and the parser's peak RSS (``VmHWM``
of the child). Targets: ratio >= 0.5, peak RSS <= 300 MB.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO_ROOT, last_json_line, vm_mb

DEFAULT_FIXTURE = REPO_ROOT.parent / "shared" / "fixtures" / "commerceml" / "carono_cml2.07" / "offers.xml"
TARGET_RATIO = 0.5
TARGET_RSS_MB = 300.0

_OFFER = re.compile(r"<Предложение>.*?</Предложение>", re.S)
_FIRST_ID = re.compile(r"<Ид>[^<]*</Ид>")


def generate(fixture: Path, target: Path, size_bytes: int) -> tuple[int, int]:
    """Write an offers file of about ``size_bytes`` by repeating the fixture's offers with new ids.

    Args:
        fixture: A CommerceML offers file with ``<Предложения>``.
        target: Output path.
        size_bytes: Size to reach (the closing tags are added after it).

    Returns:
        ``(bytes_written, offers_written)``.
    """
    text = fixture.read_bytes().decode("utf-8-sig")
    start = text.index("<Предложения>") + len("<Предложения>")
    end = text.index("</Предложения>")
    # Split every offer around its own <Ид> once, so the loop only concatenates strings.
    templates = []
    for block in _OFFER.findall(text[start:end]):
        match = _FIRST_ID.search(block)
        if match is None:
            raise ValueError(f"{fixture}: an offer has no <Ид>")
        templates.append((block[: match.start()], block[match.end() :]))
    if not templates:
        raise ValueError(f"{fixture}: no <Предложение> to repeat")
    head, tail = text[:start].encode(), text[end:].encode()
    written = offers = 0
    with target.open("wb") as out:
        out.write(b"\xef\xbb\xbf" + head)  # 1C writes a BOM; keep the benchmark honest
        written += 3 + len(head)
        while written < size_bytes:
            batch = []
            for _ in range(1000):
                before, after = templates[offers % len(templates)]
                new_id = (
                    f"{offers:08x}-0000-4000-8000-{offers:012x}#{offers:08x}-0000-4000-9000-{offers:012x}"
                )
                batch.append(f"\n\t\t\t{before}<Ид>{new_id}</Ид>{after}")
                offers += 1
            chunk = "".join(batch).encode()
            out.write(chunk)
            written += len(chunk)
        out.write(b"\n\t\t" + tail)
        written += 3 + len(tail)
    return written, offers


def _peak_rss_mb() -> float:
    return vm_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _run_ceiling(path: str) -> int:
    from lxml import etree

    elements = 0
    for _, el in etree.iterparse(path, events=("end",), resolve_entities=False, no_network=True):
        el.clear(keep_tail=False)
        parent = el.getparent()
        if parent is not None:
            while el.getprevious() is not None:
                del parent[0]
        elements += 1
    return elements


def _run_parser(path: str) -> int:
    sys.path.insert(0, str(REPO_ROOT / "plugins"))
    from elt_platform.sources.commerceml.parser import parse_file

    records = 0
    for _ in parse_file(path):
        records += 1
    return records


def _child(mode: str, path: str) -> None:
    started = time.perf_counter()
    count = _run_ceiling(path) if mode == "ceiling" else _run_parser(path)
    seconds = time.perf_counter() - started
    print(json.dumps({"mode": mode, "seconds": seconds, "count": count, "peak_rss_mb": _peak_rss_mb()}))


def _measure(mode: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return last_json_line(done.stdout)


def main(argv: list[str] | None = None) -> int:
    """Generate the file, run both passes, print the figures; exit 1 when a target is missed."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--size-mb", type=float, default=1024.0, help="size of the generated offers file")
    args.add_argument(
        "--out", type=Path, default=None, help="directory for the generated file (default: temp)"
    )
    args.add_argument(
        "--fixture", type=Path, default=DEFAULT_FIXTURE, help="offers file whose offers to repeat"
    )
    args.add_argument("--keep", action="store_true", help="keep the generated file")
    args.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    opts = args.parse_args(argv)
    if opts.child:
        _child(*opts.child)
        return 0

    out_dir = opts.out or Path(tempfile.mkdtemp(prefix="commerceml_bench_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "offers.xml"
    started = time.perf_counter()
    size, offers = generate(opts.fixture, target, int(opts.size_mb * 1024 * 1024))
    size_mb = size / 1024 / 1024
    print(f"generated {target}: {size_mb:.1f} MB, {offers} offers in {time.perf_counter() - started:.1f} s")
    try:
        ceiling = _measure("ceiling", target)
        parser = _measure("parser", target)
    finally:
        if not opts.keep:
            target.unlink(missing_ok=True)
            if opts.out is None:
                out_dir.rmdir()
    ceiling_speed = size_mb / ceiling["seconds"]
    parser_speed = size_mb / parser["seconds"]
    ratio = parser_speed / ceiling_speed
    for label, run, speed, unit in (
        ("ceiling (bare iterparse)", ceiling, ceiling_speed, "elements"),
        ("parser (parse_file)", parser, parser_speed, "records"),
    ):
        print(f"{label + ':':26}{run['seconds']:.2f} s, {speed:.1f} MB/s, {run['count']} {unit}")
    print(f"ratio parser/ceiling:     {ratio:.2f} (target >= {TARGET_RATIO})")
    print(f"parser peak RSS:          {parser['peak_rss_mb']:.1f} MB (target <= {TARGET_RSS_MB:.0f} MB)")
    return 0 if ratio >= TARGET_RATIO and parser["peak_rss_mb"] <= TARGET_RSS_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
