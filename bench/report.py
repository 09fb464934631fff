"""Turning the benchmark results into rows: figure, dqueue, floor, ratio, target, pass/fail."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    figure: str
    dqueue: str
    floor: str
    ratio: str
    target: str
    verdict: str  # "pass", "FAIL" or "info"


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _ratio_row(figure: str, dq: float, ref: float, minimum: float | None) -> Row:
    ratio = dq / ref if ref else float("nan")
    if minimum is None:
        return Row(figure, _rate(dq), _rate(ref), f"{ratio:.2f}", "-", "info")
    return Row(figure, _rate(dq), _rate(ref), f"{ratio:.2f}", f"≥ {minimum:.2f}",
               "pass" if ratio >= minimum else "FAIL")


def drain_rows(result: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    jobs, future = result["jobs"], result["future_rows"]
    top = max(result["empty"], key=int)  # the target is set at the largest N (4)
    for n, r in result["empty"].items():
        dq, f1, f10 = r["dqueue"], r["floor_1"]["rate"], r["floor_10"]["rate"]
        target = 1.0 if n == top else None
        rows.append(_ratio_row(f"drain {jobs:,} no-op, N={n}, vs 1-job floor P={n}", dq["rate"], f1, target))
        if n == top:
            rows.append(_ratio_row(f"drain N={n}, net of {dq['startup_seconds']:.2f} s CLI start-up, "
                                   f"vs 1-job floor", dq["net_rate"], f1, 1.0))
        rows.append(_ratio_row(f"drain N={n} vs 10-job floor P={n}", dq["rate"], f10, None))
        if n == top and "client_cpu_ms_per_job" in dq:
            mine, floors = dq["client_cpu_ms_per_job"], r["floor_10"]["client_cpu_ms_per_job"]
            rows.append(Row(f"client CPU per job, N={n} (incl. start-up) vs 10-job floor (info)",
                            f"{mine:.2f} ms", f"{floors:.2f} ms", f"{mine / floors:.2f}", "-", "info"))
    for n, r in result["future"].items():
        empty = result["empty"][n]["dqueue"]["rate"]
        rows.append(_ratio_row(f"drain N={n} with {future:,} future rows, vs dqueue on the empty "
                               "table (floor column)", r["dqueue"]["rate"], empty, 0.8))
        f1_empty = result["empty"][n]["floor_1"]["rate"]
        rows.append(_ratio_row(f"1-job floor P={n} with {future:,} future rows, vs empty (info)",
                               r["floor_1"]["rate"], f1_empty, None))
    return rows


def enqueue_rows(result: dict[str, Any]) -> list[Row]:
    floor = result["floor"]["rate"]
    return [
        _ratio_row("enqueue, 1 client, Client.enqueue (commit each) vs INSERT+COMMIT floor",
                   result["dqueue"]["rate"], floor, 0.8),
        _ratio_row(f"enqueue_many, batches of {result['enqueue_many']['batch']} (info)",
                   result["enqueue_many"]["rate"], floor, None),
    ]


def latency_rows(result: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for state, label in (("empty", "empty table"), ("future", f"{result['future_rows']:,} future rows")):
        for n, r in result.get(state, {}).items():
            idle = r["idle"]
            where = f"N={n}, {label}"
            for key, how in (("latency", "same host (doorbell)"),
                             ("latency_other_host", "other host (network doorbell)"),
                             ("latency_polled", "polling only (both doorbells off)")):
                if key not in r:
                    continue
                lat = r[key]
                # Polling only is the fallback when no bell can reach a worker: shown, not judged.
                judged = key != "latency_polled"
                for pct, limit in (("p50", 20), ("p99", 100)):
                    value = lat[f"{pct}_ms"]
                    verdict = ("pass" if value <= limit else "FAIL") if judged else "info"
                    rows.append(Row(f"enqueue-to-start {pct}, {how}, {where}", f"{value:.1f} ms", "-", "-",
                                    f"≤ {limit} ms" if judged else "-", verdict))
            pct = idle["pct_per_worker"]
            rows.append(Row(f"idle CPU per worker (process + its server threads), {where}",
                            f"{pct:.2f}% ({idle['pool_pct_per_worker']:.2f} + "
                            f"{idle['server_pct_per_worker']:.2f})", "-", "-", "< 2%",
                            "pass" if pct < 2 else "FAIL"))
    return rows


def markdown(rows: list[Row]) -> str:
    lines = ["| figure | dqueue | floor | ratio | target | result |", "|---|---:|---:|---:|---|---|"]
    lines += [f"| {r.figure} | {r.dqueue} | {r.floor} | {r.ratio} | {r.target} | {r.verdict} |"
              for r in rows]
    return "\n".join(lines)


def as_dicts(rows: list[Row]) -> list[dict[str, str]]:
    return [asdict(r) for r in rows]
