"""Benchmark (run by hand: `.venv/bin/python -m bench.quote_pdf`): quotation PDF render time and size.

Renders the test quote (Arabic company and Cyrillic contact name, VAT 5%, AED) with 1 and 50 line
items, 20 times each after one warm-up render, and prints the median time and the PDF size with
ratios against the 1-line baseline measured in the same run. The first render of the process, which
also parses the two DejaVu TTFs, is printed separately. Targets at 50 lines: ≤ 100 ms, ≤ 300 KB.
"""

import statistics
import time
from pathlib import Path

from bot.commerce.quote_pdf import render_quote_pdf
from tests.commerce.test_quote_pdf import make_quote

ROOT = Path(__file__).resolve().parent.parent

RUNS = 20
SIZES = (1, 50)


def timed(doc) -> tuple[float, int]:
    """(milliseconds, bytes) of one render."""
    start = time.perf_counter()
    pdf = render_quote_pdf(doc)
    return (time.perf_counter() - start) * 1000, len(pdf)


def main() -> None:
    cold_ms, _ = timed(make_quote(1))
    results = {}
    for n in SIZES:
        doc = make_quote(n)
        timed(doc)
        runs = [timed(doc) for _ in range(RUNS)]
        results[n] = (statistics.median(ms for ms, _ in runs), runs[0][1])
    base_ms, base_size = results[SIZES[0]]
    print(f"first render of the process (font loading included): {cold_ms:.1f} ms\n")
    print(f"{'lines':>5} | {'median ms':>9} | {'× 1 line':>8} | {'size KB':>7} | {'× 1 line':>8}")
    print(f"{'-' * 5}-+-{'-' * 9}-+-{'-' * 8}-+-{'-' * 7}-+-{'-' * 8}")
    for n, (ms, size) in results.items():
        print(f"{n:>5} | {ms:>9.1f} | {ms / base_ms:>8.2f} | {size / 1024:>7.1f} | {size / base_size:>8.2f}")
    ms, size = results[SIZES[-1]]
    verdict = "met" if ms <= 100 and size <= 300 * 1024 else "MISSED"
    print(f"\ntargets at {SIZES[-1]} lines (≤ 100 ms, ≤ 300 KB): {verdict}")


if __name__ == "__main__":
    main()
