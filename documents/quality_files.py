"""The quality report as files: every rate, count and counted unit as CSV; the monthly rates as
a PNG chart. ``services.reports.quality`` writes them when asked (``--csv``, ``--chart``).

CSV columns: ``section`` (``rate``, ``count`` or ``counted``), ``id``, ``title``, ``dimension``,
``key``, ``numerator``, ``denominator``, ``value``; a counted unit carries its day as the key, the
donation number in ``numerator`` and the donation UUID in ``denominator`` (the column layout of
the first version, kept so that spreadsheets made for it still read it).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from projections.quality_report import QualityReport

#: The rates the chart draws, one line each.
CHART_RATES = (
    "record_modification_rate",
    "field_modification_rate",
    "staff_missing_signature_rate",
    "donor_missing_signature_rate",
)


def write_quality_csv(report: QualityReport, titles: Mapping[str, str], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["section", "id", "title", "dimension", "key", "numerator", "denominator", "value"]
        )
        for rate in report.rates:
            value = "" if rate.value is None else f"{rate.value:.6f}"
            writer.writerow(
                [
                    "rate",
                    rate.metric,
                    titles[rate.metric],
                    rate.dimension,
                    rate.key,
                    rate.numerator,
                    rate.denominator,
                    value,
                ]
            )
        for count in report.counts:
            writer.writerow(
                [
                    "count",
                    count.count,
                    titles[count.count],
                    count.dimension,
                    count.key,
                    "",
                    "",
                    count.value,
                ]
            )
        for item in report.items:
            writer.writerow(
                [
                    "counted",
                    item.metric,
                    item.what,
                    "day",
                    item.day,
                    item.donation_no,
                    item.donation_id,
                    "",
                ]
            )


def write_quality_chart(report: QualityReport, titles: Mapping[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    months = report.months()
    figure, (rates_axis, counts_axis) = plt.subplots(
        2, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    x = list(range(len(months)))
    for metric in CHART_RATES:
        values = [report.rate(metric, "month", m).value for m in months]
        rates_axis.plot(
            x,
            [100 * v if v is not None else float("nan") for v in values],
            marker="o",
            label=titles[metric],
        )
    rates_axis.set_ylabel("% of the counted units")
    rates_axis.set_title(f"Quality by month, {report.start} to {report.end}")
    rates_axis.legend(fontsize="small")
    rates_axis.grid(alpha=0.3)
    width = 0.4
    for offset, count in ((-width / 2, "registrations"), (width / 2, "collections")):
        counts_axis.bar(
            [i + offset for i in x],
            [report.count(count, "month", m) for m in months],
            width=width,
            label=titles[count],
        )
    counts_axis.set_ylabel("per month")
    counts_axis.set_xticks(x, months)
    counts_axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
